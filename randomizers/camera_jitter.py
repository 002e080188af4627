"""Small drifts of the fixed cameras: position, look-at point, field of view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import VISUAL, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene, replace


@randomizer("camera_jitter", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class CameraJitter(Randomizer):
    """Per fixed camera: offsets of position and look-at point [m] per axis, fovy offset [deg]."""

    description = "each fixed camera's position, look-at point and field of view"
    stage = VISUAL
    position: tuple[float, float] = key(
        (-0.03, 0.03), "[m] range of each fixed camera's position offset, drawn per axis"
    )
    lookat: tuple[float, float] = key(
        (-0.03, 0.03), "[m] range of each fixed camera's look-at point offset, drawn per axis"
    )
    fovy: tuple[float, float] = key((-3.0, 3.0), "[deg] range of each fixed camera's vertical field-of-view offset")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        cams, draws = [], {}
        for cam in scene.cameras:
            dp = rng.uniform(*self.position, 3).tolist()
            dl = rng.uniform(*self.lookat, 3).tolist()
            df = uniform(rng, self.fovy)
            pos = tuple(a + b for a, b in zip(cam.pos, dp, strict=True))
            lookat = tuple(a + b for a, b in zip(cam.lookat, dl, strict=True))
            cams.append(replace(cam, pos=pos, lookat=lookat, fovy=cam.fovy + df))
            draws[cam.name] = {"position": dp, "lookat": dl, "fovy": df}
        return scene.replace(cameras=tuple(cams)), draws
