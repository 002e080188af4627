"""Position and yaw of the task's object on the table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import PLACE, Randomizer, uniform
from synth.registry import randomizer
from synth.tabletop.placement import occupied, sample_free
from synth.types import Scene


@randomizer("object_pose", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class ObjectPose(Randomizer):
    """Centre in x, y [m] (world; the robot base is at the origin) and yaw [rad] of each of the task's
    objects, clear of the rest, and inside the task's `Scene.region` if it has one. Draws of objects[0] at
    the top level, of objects[i] under "obj<i>"."""

    description = "each task object's x, y and yaw"
    stage = PLACE
    x: tuple[float, float] = key(
        (0.38, 0.62), "[m] range of each task object's centre x (world; the robot base at the origin)"
    )
    y: tuple[float, float] = key((-0.22, 0.22), "[m] range of each task object's centre y (world)")
    yaw: tuple[float, float] = key((-math.pi, math.pi), "[rad] range of each task object's yaw about the vertical")
    task_gap: float = key(0.05, "[m] between the footprints of a task's own objects (stack, pick_place_multi); >= 0")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        draws: dict = {}
        box = (*self.x, *self.y)
        if scene.region:  # the task's own limits (bimanual_lift: between the two arms)
            r = scene.region
            box = (max(box[0], r[0]), min(box[1], r[1]), max(box[2], r[2]), min(box[3], r[3]))
        for i in range(scene.task_objects):
            obj = scene.objects[i]
            gap = 0.02 if i == 0 else self.task_gap  # room for open fingers between the task's own objects
            xy = sample_free(rng, box, obj.footprint, occupied(scene, skip=i), gap=gap)
            if xy is None:  # nothing free: keep the nominal place, recorded as such
                xy = np.asarray(obj.xy)
            yaw = uniform(rng, self.yaw)
            scene = scene.with_object(i, xy=(float(xy[0]), float(xy[1])), yaw=yaw)
            d = {"x": float(xy[0]), "y": float(xy[1]), "yaw": yaw}
            draws.update(d if i == 0 else {f"obj{i}": d})
        return scene, draws
