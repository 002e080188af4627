"""Procedural textures on the table, the floor and background walls: checker, stripes, noise or plain."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import VISUAL, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.types import PATTERNS, SURFACES, Scene, Texture


@randomizer("textures", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Textures(Randomizer):
    """Per surface in `surfaces` (table, floor, walls: walls are added behind and beside the robot when
    listed): a pattern from `patterns`, `cells` pattern periods across the texture, a base colour of
    value (brightness) in `value` and saturation in `saturation`, and a second colour `contrast`
    brighter or darker. A textured table shows its texture instead of its plain colour."""

    description = "procedural textures on the table, the floor and the walls"
    stage = VISUAL
    surfaces: tuple[str, ...] = key(
        ("table", "floor", "walls"), "surfaces textured: table, floor, walls (walls added behind and beside the robot)"
    )
    patterns: tuple[str, ...] = key(PATTERNS, "patterns drawn from: plain, checker, stripes, noise")
    cells: tuple[int, int] = key((2, 10), "range of pattern periods across a texture, whole numbers >= 1")
    value: tuple[float, float] = key((0.25, 0.9), "range of the base colour's value (brightness); within [0, 1]")
    saturation: tuple[float, float] = key((0.0, 0.6), "range of the base colour's saturation; within [0, 1]")
    contrast: tuple[float, float] = key(
        (0.1, 0.45), "range of the second colour's value below the base (above where too dark); within [0, 1]"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.surfaces if s not in SURFACES] + [p for p in self.patterns if p not in PATTERNS]
        if bad or not self.patterns:
            raise ConfigError(
                f"randomizers.textures: unknown or empty choices {bad}; surfaces from {list(SURFACES)}, "
                f"patterns from {list(PATTERNS)}"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        textures, draws = [], {}
        for surface in self.surfaces:
            pattern = str(pick(rng, self.patterns))
            hue, sat, val = float(rng.uniform()), uniform(rng, self.saturation), uniform(rng, self.value)
            c = uniform(rng, self.contrast)
            val2 = val - c if val - c >= 0.05 else val + c
            rgb1 = tuple(round(v, 4) for v in colorsys.hsv_to_rgb(hue, sat, val))
            rgb2 = tuple(round(v, 4) for v in colorsys.hsv_to_rgb(hue, sat, min(val2, 1.0)))
            cells = int(rng.integers(self.cells[0], self.cells[1] + 1))
            seed = int(rng.integers(2**31 - 1))
            textures.append((surface, Texture(pattern, rgb1, rgb2, cells, seed)))
            draws[surface] = {"pattern": pattern, "rgb1": list(rgb1), "rgb2": list(rgb2), "cells": cells, "seed": seed}
        return scene.replace(textures=tuple(textures)), draws
