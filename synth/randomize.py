"""Randomizers: pure functions of (scene, rng) that return a new scene and the draws they made.

Each randomizer gets its own random stream, keyed by (root seed, attempt index, randomizer name),
so adding or removing one never changes what the others draw.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from synth.errors import ConfigError
from synth.types import Scene

T = TypeVar("T")

# stages run in this order; within a stage by name
SCENE, PLACE, CLUTTER, PHYSICS, VISUAL = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Randomizer:
    """Base: every field that is a pair of numbers is a (low, high) range and is checked. `acts_on`,
    `kinematic` and `evaluation` are declared by the registering decorator (synth.registry.randomizer)."""

    name: ClassVar[str] = "randomizer"
    stage: ClassVar[int] = PLACE
    description: ClassVar[str] = ""  # one line for `synth randomizers`
    acts_on: ClassVar[str]  # one of synth.registry.ACTS_ON
    kinematic: ClassVar[bool]  # mode=kinematic applies it (False: refused there)
    evaluation: ClassVar[bool]  # synth eval keeps it (False: a demonstration-only randomizer, left out)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple | list) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
                if v[0] > v[1]:
                    raise ConfigError(f"randomizers.{self.name}.{f.name}: low {v[0]} > high {v[1]}; give [low, high]")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        raise NotImplementedError

    def unmapped(self, backend: str) -> list[str]:
        """What of this randomizer's draws physics `backend` cannot build (refused, never dropped): the concave
        shapes (cup, mesh files) on PyBullet by default; a randomizer that draws something else adds its own."""
        concave = {"cup", "file"} & set(getattr(self, "shapes", ()))
        return sorted(concave) if backend == "pybullet" else []

    def check_body(self, dof: int, body: str) -> None:
        """Refuse (ConfigError) embodiment `body`, with `dof` arm joints, if this randomizer cannot draw for it."""

    def extra_objects(self) -> int:
        """How many object slots beyond the task's own this randomizer may fill."""
        return 0


def slots(scene: Scene, randomizers: list[Randomizer]) -> int:
    """Object bodies a compiled model needs: the task's nominal objects and any a randomizer may add."""
    return len(scene.objects) + max([r.extra_objects() for r in randomizers] + [0])


def stream(seed: int, attempt: int, key: str) -> np.random.Generator:
    """The random stream of one (seed, attempt, purpose)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(attempt, zlib.crc32(key.encode()))))


def apply(
    randomizers: list[Randomizer], scene: Scene, seed: int, attempt: int, key: str = "randomizer"
) -> tuple[Scene, dict]:
    """Run every randomizer in stage order; returns the scene and {name: draws}. `key` prefixes the streams'
    keys (another prefix: another, independent draw of the same attempt; synth.focus draws candidates so)."""
    draws = {}
    for r in sorted(randomizers, key=lambda r: (r.stage, r.name)):
        scene, d = r(scene, stream(seed, attempt, f"{key}/{r.name}"))
        draws[r.name] = d
    return scene, draws


def uniform(rng: np.random.Generator, rng_range: tuple[float, float]) -> float:
    """float(rng.uniform(low, high)): numpy computes it as low + (high - low) * rng.random(), and so does this,
    without the argument handling that costs 4x the draw."""
    low, high = rng_range
    return low + (high - low) * rng.random()


def pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    """rng.choice(seq) for one element of a sequence: numpy draws rng.integers(0, len(seq)) for it, and so does
    this, without turning seq into an array first (6x faster, the same element)."""
    return seq[int(rng.integers(0, len(seq)))]


def apply_many(randomizers: list[Randomizer], scene: Scene, seed: int, attempts: list[int]) -> list[tuple[Scene, dict]]:
    """apply() for each of `attempts`, the streams of all of them seeded at once (the same scenes and draws)."""
    order = sorted(randomizers, key=lambda r: (r.stage, r.name))
    streams = [Streams(seed, attempts, f"randomizer/{r.name}") for r in order]
    out = []
    for j in range(len(attempts)):
        sc, draws = scene, {}
        for r, s in zip(order, streams, strict=True):
            sc, draws[r.name] = r(sc, s[j])
        out.append((sc, draws))
    return out


M32, M128 = 0xFFFFFFFF, (1 << 128) - 1
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED  # numpy's SeedSequence
MIX_L, MIX_R = 0xCA01F9DD, 0x4973F715
PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341  # PCG64's 128-bit multiplier


class Streams:
    """stream(seed, a, key) for many attempts a at once: numpy's SeedSequence hashing done for all of them in
    uint32 arrays, PCG64 seeded from it, then one Generator set to attempt j's state by `streams[j]` (the
    same numbers as stream(seed, attempts[j], key); the object is reused, so it is valid until the next [j])."""

    def __init__(self, seed: int, attempts: list[int], key: str):
        self._slow: tuple[int, list[int], str] | None = None
        if seed < 0 or seed > M32 or (len(attempts) > 0 and (min(attempts) < 0 or max(attempts) > M32)):
            self._slow = (seed, list(attempts), key)  # several words per number: numpy's own path
            return
        n = len(attempts)
        words = [np.full(n, seed, np.uint64), *(np.zeros(n, np.uint64) for _ in range(3))]
        words += [np.asarray(attempts, np.uint64), np.full(n, zlib.crc32(key.encode()), np.uint64)]
        hc = INIT_A

        def hashmix(v: np.ndarray) -> np.ndarray:
            nonlocal hc
            v = v ^ hc
            hc = (hc * MULT_A) & M32
            v = (v * hc) & M32
            return v ^ (v >> 16)

        def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            r = (MIX_L * x - MIX_R * y) & M32
            return r ^ (r >> 16)

        pool = [hashmix(words[i]) for i in range(4)]
        for src in range(4):
            for dst in range(4):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(4, len(words)):
            for dst in range(4):
                pool[dst] = mix(pool[dst], hashmix(words[src]))
        hb, out = INIT_B, []
        for i in range(8):  # generate_state(4, uint64)
            v = pool[i % 4] ^ hb
            hb = (hb * MULT_B) & M32
            v = (v * hb) & M32
            out.append(v ^ (v >> 16))
        val = [(out[2 * k] | (out[2 * k + 1] << 32)).tolist() for k in range(4)]
        self._states: list[dict] = []
        for v0, v1, v2, v3 in zip(*val, strict=True):  # pcg64_set_seed: state = (inc + seed) * M + inc
            inc = ((((v2 << 64) | v3) << 1) | 1) & M128
            st = (((inc + ((v0 << 64) | v1)) * PCG_MULT) + inc) & M128
            state = {"bit_generator": "PCG64", "state": {"state": st, "inc": inc}, "has_uint32": 0, "uinteger": 0}
            self._states.append(state)
        self._bits = np.random.PCG64(0)
        self._gen = np.random.Generator(self._bits)

    def __getitem__(self, j: int) -> np.random.Generator:
        if self._slow is not None:
            seed, attempts, key = self._slow
            return stream(seed, attempts[j], key)
        self._bits.state = self._states[j]  # type: ignore[assignment]
        return self._gen
