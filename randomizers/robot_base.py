"""Where the robot stands: its base shifted in x, y and turned about the vertical, relative to the table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import SCENE, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene


@randomizer("robot_base", acts_on="scene", kinematic=False, evaluation=True)
@dataclass(frozen=True)
class RobotBase(Randomizer):
    """Robot base offsets from the embodiment's own pose: `x`, `y` [m] and `yaw` [rad] about the vertical.
    The arm, its pedestal and wrist camera move; the table, objects and fixed cameras stay. The
    planners solve in the moved base's frame, and the robot-frame outputs (observation.ee_pose,
    synth.object_pose, ee actions) are expressed in it."""

    description = "the robot base: shifted in x and y, turned about the vertical"
    stage = SCENE
    x: tuple[float, float] = key((-0.03, 0.03), "[m] range of the base's x offset from the embodiment's own pose")
    y: tuple[float, float] = key((-0.03, 0.03), "[m] range of the base's y offset from the embodiment's own pose")
    yaw: tuple[float, float] = key(
        (-math.radians(5.0), math.radians(5.0)), "[rad] range of the base's turn about the vertical"
    )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        x, y, yaw = uniform(rng, self.x), uniform(rng, self.y), uniform(rng, self.yaw)
        return scene.replace(base=(x, y, yaw)), {"x": x, "y": y, "yaw": yaw}
