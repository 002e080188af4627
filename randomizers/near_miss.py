"""Corrections in the last centimetres: the expert comes down beside and above the grasp, stops, then takes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene, StoppedDescent


@randomizer("near_miss", acts_on="expert", kinematic=False, evaluation=False)
@dataclass(frozen=True)
class NearMiss(Randomizer):
    """With probability `chance` per episode, the pick-and-place expert's first descent is aimed `offset` [m]
    (horizontally, in a uniformly drawn world direction) beside the grasp it planned and stops `height` [m] above
    it, with the fingers open and without touching anything; from there it moves straight to the planned grasp and
    closes as always. The descent to that stop is phase `miss`, which `synth train` does not imitate
    (synth.vla.data.IGNORED) but whose images still train the heads that say where the object is; the correction
    after it is phase `grasp`. These are the states a policy's own closed loop ends in, a centimetre or two off
    and above the object, which an expert that always comes down centred never shows. Draws whose stop or
    correction would touch the object or the table are planned without it (the plan's stats say
    `near_miss: false`). Tasks without a pick-and-place ignore it. Draws: `miss` (0 or 1), `dx`, `dy`, `dz` [m]."""

    description = "corrections: a stop beside and above the grasp, then the grasp"
    stage = PHYSICS
    chance: float = key(
        0.3, "probability per episode that the first descent stops beside and above the grasp; in [0, 1]"
    )
    offset: tuple[float, float] = key(
        (0.005, 0.025), "[m] range of the stop's horizontal distance from the planned grasp; low >= 0"
    )
    height: tuple[float, float] = key((0.01, 0.04), "[m] range of the stop's height above the planned grasp; low > 0")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.chance <= 1.0 or self.offset[0] < 0 or self.height[0] <= 0:
            raise ConfigError(
                f"randomizers.near_miss: chance={self.chance}, offset={list(self.offset)}, "
                f"height={list(self.height)}; give a chance in [0, 1], a non-negative offset range [m] and a "
                "positive height range [m]"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        miss = bool(rng.random() < self.chance)
        r, a, dz = uniform(rng, self.offset), float(rng.uniform(0.0, 2.0 * np.pi)), uniform(rng, self.height)
        dx, dy, dz = (r * np.cos(a), r * np.sin(a), dz) if miss else (0.0, 0.0, 0.0)
        return scene.perturbed(near_miss=StoppedDescent(dx, dy, dz)), {"miss": int(miss), "dx": dx, "dy": dy, "dz": dz}
