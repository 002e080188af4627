"""Recovery demonstrations: the expert first closes beside the object on purpose, then lets go and grasps again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import MissedGrasp, Scene


@randomizer("regrasp", acts_on="expert", kinematic=False, evaluation=False)
@dataclass(frozen=True)
class Regrasp(Randomizer):
    """With probability `chance` per episode, the pick-and-place expert's first grasp is aimed `offset` [m]
    (horizontally, in a uniformly drawn world direction) beside the one it planned: it comes down there and
    closes, lifts the hand `up` [m], opens, moves over the planned grasp and takes the object (the task's
    phases `miss` and `regrasp`). The episode is written only if the physics then succeeds, as every other.
    Its frames up to the end of the missed close are marked `miss`, and `synth train` does not imitate them:
    the policy learns what to do after a failed grasp without learning to miss (synth.vla.data.IGNORED).
    Tasks without a pick-and-place (push, drawers, the bimanual lift) ignore it. Draws: `miss` (0 or 1),
    `dx`, `dy` [m]."""

    description = "recovery demonstrations: a missed grasp, then the grasp"
    stage = PHYSICS
    chance: float = key(
        0.3, "probability per episode that the first grasp misses beside the object, then regrasps; in [0, 1]"
    )
    offset: tuple[float, float] = key(
        (0.03, 0.045), "[m] range of the missed grasp's horizontal distance from the planned one; low >= 0"
    )
    up: float = key(0.04, "[m] the hand lifts this far after the missed close; > 0")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.chance <= 1.0 or self.offset[0] < 0 or self.up <= 0:
            raise ConfigError(
                f"randomizers.regrasp: chance={self.chance}, offset={list(self.offset)}, up={self.up}; "
                "give a chance in [0, 1], a non-negative offset range [m] and a positive lift [m]"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        miss = bool(rng.random() < self.chance)
        r, a = uniform(rng, self.offset), float(rng.uniform(0.0, 2.0 * np.pi))
        dx, dy = (r * np.cos(a), r * np.sin(a)) if miss else (0.0, 0.0)
        return scene.perturbed(regrasp=MissedGrasp(dx, dy, self.up if miss else 0.0)), {
            "miss": int(miss),
            "dx": dx,
            "dy": dy,
            "up": self.up,
        }
