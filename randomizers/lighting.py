"""The key light (Scene.lights[0], directional): direction, intensity, colour; and the ambient level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.randomize import VISUAL, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Light, Scene


@randomizer("lighting", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Lighting(Randomizer):
    """Light from azimuth [rad] and elevation [rad] above the horizon; intensity in [0, 1];
    tint > 0 is warmer (more red, less blue); ambient in [0, 1]."""

    stage = VISUAL
    azimuth: tuple[float, float] = (-math.pi, math.pi)
    elevation: tuple[float, float] = (0.5, 1.45)
    intensity: tuple[float, float] = (0.35, 0.95)
    tint: tuple[float, float] = (-0.2, 0.2)
    ambient: tuple[float, float] = (0.1, 0.4)

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        az, el = uniform(rng, self.azimuth), uniform(rng, self.elevation)
        i, t, a = uniform(rng, self.intensity), uniform(rng, self.tint), uniform(rng, self.ambient)
        light = Light(
            direction=(-(math.cos(el) * math.cos(az)), -(math.cos(el) * math.sin(az)), -math.sin(el)),
            diffuse=(i * (1 + t), i, i * (1 - t)),
            ambient=(a, a, a),
        )
        return scene.replace(lights=(light, *scene.lights[1:])), {
            "azimuth": az,
            "elevation": el,
            "intensity": i,
            "tint": t,
            "ambient": a,
        }
