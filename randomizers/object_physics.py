"""Friction and mass of every object on the table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene, replace


@randomizer("object_physics", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class ObjectPhysics(Randomizer):
    """Sliding friction coefficient and mass [kg] per object (drawn independently)."""

    description = "each object's sliding friction and mass"
    stage = PHYSICS
    friction: tuple[float, float] = key((0.6, 1.2), "range of each object's sliding friction coefficient; >= 0")
    mass: tuple[float, float] = key((0.05, 0.35), "[kg] range of each object's mass; > 0")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        objs, draws = [], []
        for o in scene.objects:
            f, m = uniform(rng, self.friction), uniform(rng, self.mass)
            objs.append(replace(o, friction=f, mass=m))
            draws.append({"object": o.name, "friction": f, "mass": m})
        return scene.replace(objects=tuple(objs)), {"objects": draws}
