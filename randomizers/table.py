"""Table height, size and colour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.palette import DEFAULT_TABLE_COLOURS, TABLE_COLOURS, rgba
from synth.randomize import SCENE, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.types import Scene, Table

NEAR_EDGE = 0.12  # [m] the table's edge nearest the robot, in front of its base


@randomizer("table", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class TableLook(Randomizer):
    """Top height [m] (the arm's base is at 0.75 m), half extents [m], colour from `colours`."""

    description = "the table top's height, size and colour"
    stage = SCENE
    height: tuple[float, float] = key((0.72, 0.78), "[m] range of the table top's height (the arm's base is at 0.75 m)")
    half_x: tuple[float, float] = key((0.3, 0.4), "[m] range of the table top's half extent in x (away from the robot)")
    half_y: tuple[float, float] = key((0.42, 0.6), "[m] range of the table top's half extent in y")
    colours: tuple[str, ...] = key(
        DEFAULT_TABLE_COLOURS, "colours: light wood, dark wood, white, grey, black, beige, green felt, navy, brick red"
    )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        h, hx, hy = uniform(rng, self.height), uniform(rng, self.half_x), uniform(rng, self.half_y)
        colour = str(pick(rng, self.colours))
        t = Table(
            size=(hx, hy),
            height=h,
            centre=(NEAR_EDGE + hx, 0.0),
            colour=colour,
            rgba=rgba(TABLE_COLOURS[colour]),
            friction=scene.table.friction,
        )
        return scene.replace(table=t), {"height": h, "half_x": hx, "half_y": hy, "colour": colour}
