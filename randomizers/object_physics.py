"""Friction and mass of every object on the table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene, replace


@randomizer("object_physics", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class ObjectPhysics(Randomizer):
    """Sliding friction coefficient and mass [kg] per object (drawn independently)."""

    stage = PHYSICS
    friction: tuple[float, float] = (0.6, 1.2)
    mass: tuple[float, float] = (0.05, 0.35)

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        objs, draws = [], []
        for o in scene.objects:
            f, m = uniform(rng, self.friction), uniform(rng, self.mass)
            objs.append(replace(o, friction=f, mass=m))
            draws.append({"object": o.name, "friction": f, "mass": m})
        return scene.replace(objects=tuple(objs)), {"objects": draws}
