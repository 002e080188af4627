"""Joint damping and actuator position gains of the arm, per joint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer
from synth.registry import randomizer
from synth.types import ArmDynamics as Arm
from synth.types import Scene


@randomizer("arm_dynamics", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class ArmDynamics(Randomizer):
    """Per arm joint: a scale on its viscous damping in `damping` and on its actuator's position gain
    (stiffness, with the damping ratio kept at 1) in `gain`, drawn independently; 1 is the embodiment's
    own. Lower gains track the planned trajectory more loosely."""

    description = "per arm joint: scales on joint damping and actuator gain"
    stage = PHYSICS
    damping: tuple[float, float] = key(
        (0.5, 2.0), "range of the scale on each arm joint's damping (1: the embodiment's own); > 0"
    )
    gain: tuple[float, float] = key(
        (0.7, 1.3), "range of the scale on each arm joint's position gain, damping ratio kept at 1 (1: its own); > 0"
    )
    joints: int = key(7, "draws per episode, one per arm joint: 7 for one arm; a pair needs 12 (one slice per arm)")

    def check_body(self, dof: int, body: str) -> None:
        if self.joints < dof:
            raise ConfigError(
                f"randomizers.arm_dynamics.joints={self.joints} is fewer than the {dof} arm joints of "
                f"embodiment={body}; set randomizers.arm_dynamics.joints={dof}"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        d = [float(v) for v in rng.uniform(*self.damping, self.joints)]
        g = [float(v) for v in rng.uniform(*self.gain, self.joints)]
        return scene.replace(arm=Arm(damping=tuple(d), gain=tuple(g))), {"damping": d, "gain": g}
