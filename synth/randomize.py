"""Randomizers: pure functions of (scene, rng) that return a new scene and the draws they made.

Each randomizer gets its own random stream, keyed by (root seed, attempt index, randomizer name),
so adding or removing one never changes what the others draw.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from synth.errors import ConfigError
from synth.types import Scene

# stages run in this order; within a stage by name
SCENE, PLACE, CLUTTER, PHYSICS, VISUAL = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Randomizer:
    """Base: every field that is a pair of numbers is a (low, high) range and is checked."""

    name: ClassVar[str] = "randomizer"
    stage: ClassVar[int] = PLACE

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple | list) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
                if v[0] > v[1]:
                    raise ConfigError(f"randomizers.{self.name}.{f.name}: low {v[0]} > high {v[1]}; give [low, high]")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        raise NotImplementedError

    def extra_objects(self) -> int:
        """How many object slots beyond the task's own this randomizer may fill."""
        return 0


def slots(scene: Scene, randomizers: list[Randomizer]) -> int:
    """Object bodies a compiled model needs: the task's nominal objects and any a randomizer may add."""
    return len(scene.objects) + max([r.extra_objects() for r in randomizers] + [0])


def stream(seed: int, attempt: int, key: str) -> np.random.Generator:
    """The random stream of one (seed, attempt, purpose)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(attempt, zlib.crc32(key.encode()))))


def apply(randomizers: list[Randomizer], scene: Scene, seed: int, attempt: int) -> tuple[Scene, dict]:
    """Run every randomizer in stage order; returns the scene and {name: draws}."""
    draws = {}
    for r in sorted(randomizers, key=lambda r: (r.stage, r.name)):
        scene, d = r(scene, stream(seed, attempt, f"randomizer/{r.name}"))
        draws[r.name] = d
    return scene, draws


def uniform(rng: np.random.Generator, rng_range: tuple[float, float]) -> float:
    return float(rng.uniform(rng_range[0], rng_range[1]))
