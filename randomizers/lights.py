"""How many lights and where: fill lights (spot or point) placed around the table beside the key light."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import VISUAL, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.types import Light, Scene


@randomizer("lights", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Lights(Randomizer):
    """Light count and placement: `count` lights in all (low, high), the key light included.
    The key light (Scene.lights[0], drawn by `lighting` when that is on) is kept, and count - 1 fill lights are
    added. Each fill light is of a kind
    from `kinds` ("spot" aimed at the table's centre, with cone half angle `cutoff` [deg], or "point"), placed
    at an azimuth [rad] around the table's centre, a horizontal `distance` [m] from it and a `height` [m]
    above the table top, with white diffuse `intensity` in [0, 1]. The model always holds count[1] lights
    (the unused ones off), so the models of a batch share their layout."""

    description = "1-3 lights in all: spot or point fill lights around the table"
    stage = VISUAL
    count: tuple[int, int] = key((1, 3), "range of lights in all, the key light included: whole numbers >= 1")
    kinds: tuple[str, ...] = key(
        ("spot", "point"), "fill light kinds drawn from: spot (aimed at the table's centre), point"
    )
    azimuth: tuple[float, float] = key(
        (-math.pi, math.pi), "[rad] range of each fill light's azimuth around the table's centre"
    )
    distance: tuple[float, float] = key(
        (0.4, 1.2), "[m] range of each fill light's horizontal distance from the table's centre"
    )
    height: tuple[float, float] = key((0.5, 1.4), "[m] range of each fill light's height above the table top")
    intensity: tuple[float, float] = key(
        (0.15, 0.5), "range of each fill light's white diffuse intensity; within [0, 1]"
    )
    cutoff: tuple[float, float] = key((25.0, 60.0), "[deg] range of a spot light's cone half angle; within (0, 90)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.count[0] < 1:
            raise ConfigError(f"randomizers.lights.count: {list(self.count)}; at least 1 (the key light)")
        if not self.kinds or not set(self.kinds) <= {"spot", "point"}:
            raise ConfigError(f"randomizers.lights.kinds: {list(self.kinds)}; choose from ['spot', 'point']")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        n = int(rng.integers(self.count[0], self.count[1] + 1))
        t = scene.table
        centre = np.array([t.centre[0], t.centre[1], t.height])
        fills, draws = [], []
        for k in range(self.count[1] - 1):
            if k >= n - 1:
                fills.append(Light(diffuse=(0.0, 0.0, 0.0), ambient=(0.0, 0.0, 0.0), active=False))
                continue
            kind = str(pick(rng, self.kinds))
            az, r, h = uniform(rng, self.azimuth), uniform(rng, self.distance), uniform(rng, self.height)
            i, cut = uniform(rng, self.intensity), uniform(rng, self.cutoff)
            pos = centre + [r * math.cos(az), r * math.sin(az), h]
            aim = (centre - pos) / np.linalg.norm(centre - pos)
            light = Light(
                direction=tuple(float(v) for v in aim),
                diffuse=(i, i, i),
                ambient=(0.0, 0.0, 0.0),
                kind=kind,
                pos=tuple(float(v) for v in pos),
                cutoff=cut if kind == "spot" else Light.cutoff,
            )
            fills.append(light)
            draws.append(
                {"kind": kind, "azimuth": az, "distance": r, "height": h, "intensity": i, "pos": list(light.pos)}
            )
            if kind == "spot":
                draws[-1]["cutoff"] = cut
        return scene.replace(lights=(scene.lights[0], *fills)), {"count": n, "fill": draws}
