"""Small drifts of the fixed cameras: position, look-at point, field of view."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from synth.randomize import VISUAL, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene


@randomizer("camera_jitter")
@dataclass(frozen=True)
class CameraJitter(Randomizer):
    """Per fixed camera: offsets of position and look-at point [m] per axis, fovy offset [deg]."""

    stage = VISUAL
    position: tuple[float, float] = (-0.03, 0.03)
    lookat: tuple[float, float] = (-0.03, 0.03)
    fovy: tuple[float, float] = (-3.0, 3.0)

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        cams, draws = [], {}
        for cam in scene.cameras:
            dp = rng.uniform(*self.position, 3)
            dl = rng.uniform(*self.lookat, 3)
            df = uniform(rng, self.fovy)
            cams.append(
                replace(
                    cam,
                    pos=tuple(np.add(cam.pos, dp).tolist()),
                    lookat=tuple(np.add(cam.lookat, dl).tolist()),
                    fovy=cam.fovy + df,
                )
            )
            draws[cam.name] = {"position": dp.tolist(), "lookat": dl.tolist(), "fovy": df}
        return scene.replace(cameras=tuple(cams)), draws
