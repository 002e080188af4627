"""The key light (Scene.lights[0], directional): direction, intensity, colour; and the ambient level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import VISUAL, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Light, Scene


@randomizer("lighting", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Lighting(Randomizer):
    """Light from azimuth [rad] and elevation [rad] above the horizon; intensity in [0, 1];
    tint > 0 is warmer (more red, less blue); ambient in [0, 1]."""

    description = "the key light's direction, intensity and tint; the ambient"
    stage = VISUAL
    azimuth: tuple[float, float] = key((-math.pi, math.pi), "[rad] range of the key light's azimuth about the vertical")
    elevation: tuple[float, float] = key(
        (0.5, 1.45), "[rad] range of the key light's elevation above the horizon; within (0, pi/2]"
    )
    intensity: tuple[float, float] = key((0.35, 0.95), "range of the key light's diffuse intensity; within [0, 1]")
    tint: tuple[float, float] = key(
        (-0.2, 0.2), "range of the key light's tint: > 0 warmer (more red, less blue), < 0 cooler; within [-1, 1]"
    )
    ambient: tuple[float, float] = key((0.1, 0.4), "range of the ambient light level; within [0, 1]")

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
