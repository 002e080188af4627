"""Collision-free placement of footprints (discs) on the table's workspace."""

from __future__ import annotations

import numpy as np

from synth.types import Scene


def occupied(scene: Scene, skip: int | None = None) -> list[tuple[np.ndarray, float]]:
    """Discs (centre (2,) [m], radius [m]) taken by the active objects and the place target."""
    discs = [(np.asarray(o.xy), o.footprint) for i, o in enumerate(scene.objects) if o.active and i != skip]
    tg = scene.target
    discs.append((np.asarray(tg.pos), float(np.hypot(*tg.size)) + 0.01))
    return discs


def sample_free(
    rng: np.random.Generator,
    box: tuple[float, float, float, float],
    radius: float,
    taken: list[tuple[np.ndarray, float]],
    gap: float = 0.02,
    tries: int = 200,
) -> np.ndarray | None:
    """A centre in box (x0, x1, y0, y1) [m] whose disc of `radius` keeps `gap` from every taken disc."""
    x0, x1, y0, y1 = box
    for _ in range(tries):
        p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        if all(np.linalg.norm(p - c) >= r + radius + gap for c, r in taken):
            return p
    return None
