"""Bounciness of the objects and the table top: a coefficient of restitution, compiled into MuJoCo's solref."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.tabletop.bodies import MAX_RESTITUTION, dampratio
from synth.types import Scene


@randomizer("restitution", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Restitution(Randomizer):
    """Coefficient of restitution of each object (`objects`) and of the table top (`table`), at most 0.7.
    Restitution is rebound speed / impact speed, drawn independently per object. MuJoCo has none: each becomes
    the geom's solref damping ratio (synth.tabletop.bodies.dampratio, recorded beside it); a contact of two geoms uses
    the mean of their ratios, so an object bounces off the table with a coefficient between the two. The
    fingers' pads keep theirs."""

    description = "the bounce of each object and of the table top"
    stage = PHYSICS
    objects: tuple[float, float] = key(
        (0.0, 0.5), "range of each object's coefficient of restitution (rebound / impact speed); within [0, 0.7]"
    )
    table: tuple[float, float] = key((0.0, 0.3), "range of the table top's coefficient of restitution; within [0, 0.7]")

    def __post_init__(self) -> None:
        super().__post_init__()
        for part in ("objects", "table"):
            lo, hi = getattr(self, part)
            if lo < 0 or hi > MAX_RESTITUTION:
                raise ConfigError(
                    f"randomizers.restitution.{part}: [{lo}, {hi}]; give a range within [0, {MAX_RESTITUTION}]"
                )

    def unmapped(self, backend: str) -> list[str]:
        return ["restitution"] if backend == "pybullet" else []  # PyBullet's scene builder sets no bounce

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        draws = []
        for i, o in enumerate(scene.objects):
            e = uniform(rng, self.objects)
            scene = scene.with_object(i, restitution=e)
            draws.append({"object": o.name, "restitution": e, "dampratio": dampratio(e)})
        e = uniform(rng, self.table)
        scene = scene.replace(table=replace(scene.table, restitution=e))
        return scene, {"objects": draws, "table": {"restitution": e, "dampratio": dampratio(e)}}
