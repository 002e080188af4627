"""Other objects on the table: how many, their shapes and colours, placed without overlap."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.palette import OBJECT_COLOURS
from synth.randomize import CLUTTER, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.tabletop import objects
from synth.tabletop.placement import occupied, sample_free
from synth.types import Scene, replace


@randomizer("distractors", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Distractors(Randomizer):
    """`count` (low, high) extra objects; colours differ from the task objects' so language stays unambiguous
    (and shapes too where the task sorts its objects by shape)."""

    description = "0-3 extra objects, never in a task object's colour"
    stage = CLUTTER
    count: tuple[int, int] = key(
        (0, 3), "range of extra objects, whole numbers >= 0 (fewer where the table has no room)"
    )
    shapes: tuple[str, ...] = key(
        ("box", "cylinder", "sphere", "capsule", "mesh"),
        "shapes drawn from: box, cylinder, sphere, capsule, mesh (a random convex one), cup",
    )
    scale: tuple[float, float] = key((0.85, 1.15), "range of the scale on the shape's own size ranges")
    x: tuple[float, float] = key(
        (0.36, 0.64), "[m] range of a distractor's centre x (world; the robot base at the origin)"
    )
    y: tuple[float, float] = key((-0.26, 0.26), "[m] range of a distractor's centre y (world)")

    def extra_objects(self) -> int:
        return int(self.count[1])

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        n = int(rng.integers(self.count[0], self.count[1] + 1))
        k = scene.task_objects
        taken = {o.colour for o in scene.objects[:k]}
        colours = [c for c in OBJECT_COLOURS if c not in taken]
        shapes = list(self.shapes)
        if scene.sort_by == "shape":  # a sorting task names its classes by shape: clutter never has one
            shapes = [s for s in shapes if s not in {o.shape for o in scene.objects[:k]}] or ["mesh"]
        objs, placed = list(scene.objects[:k]), []
        # the discs of the task's objects, the targets, a lane (it follows objects[0], a task object), a cabinet;
        # then each distractor's as it is placed
        taken = occupied(scene.replace(objects=tuple(objs)))
        for i in range(n):
            o = objects.sample(
                rng, f"obj{k + i}", str(pick(rng, shapes)), str(pick(rng, colours)), uniform(rng, self.scale)
            )
            xy = sample_free(rng, (*self.x, *self.y), o.footprint, taken)
            if xy is None:
                continue  # table too crowded: fewer distractors, recorded below
            o = replace(o, xy=(float(xy[0]), float(xy[1])), yaw=uniform(rng, (-math.pi, math.pi)))
            objs.append(o)
            taken.append((xy, o.footprint))
            placed.append({"shape": o.shape, "colour": o.colour, "x": o.xy[0], "y": o.xy[1], "size": list(o.size)})
        return scene.replace(objects=tuple(objs)), {"count": len(placed), "objects": placed}
