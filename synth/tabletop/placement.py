"""Collision-free placement of footprints (discs) on the table's workspace."""

from __future__ import annotations

import math

import numpy as np

from synth.types import Scene

FIRST = 1  # tries sample_free tests one by one (most succeed at once) before it tests the rest together
FINGER_REACH = 0.06  # [m] open fingers reach this far from a held object's centre (either side, with pads)


def slot_spacing(footprint: float, gap: float = 0.006) -> float:
    """Distance [m] from a target's centre to each of several objects' slots in it (pick_place_multi):
    their footprints keep `gap` apart, and open fingers around one never reach its neighbour."""
    return max(footprint + gap, (footprint + FINGER_REACH) / 2)


def occupied(scene: Scene, skip: int | None = None) -> list[tuple[np.ndarray, float]]:
    """Discs (centre (2,) [m], radius [m]) taken by the active objects and the place targets."""
    discs = [(np.asarray(o.xy), o.footprint) for i, o in enumerate(scene.objects) if o.active and i != skip]
    for tg in scene.all_targets:
        if tg.kind != "none":
            discs.append((np.asarray(tg.pos), float(np.hypot(*tg.size)) + 0.01))
    if scene.sweep and scene.objects and skip != 0:
        discs += swept(scene)
    if scene.drawer is not None:
        discs += cabinet(scene)
    return discs


def cabinet(scene: Scene) -> list[tuple[np.ndarray, float]]:
    """Discs over a drawer's cabinet and the lane in front of it that the drawer and the hand sweep."""
    dr = scene.drawer
    assert dr is not None
    c, u = np.asarray(dr.pos, float), np.asarray(dr.out, float)
    discs = [(c, float(np.hypot(dr.size[0], dr.size[1])))]
    reach = dr.size[0] + dr.travel + dr.standoff + 0.08  # the drawer fully out, the handle, the hand
    for t in np.arange(dr.size[0], reach + 1e-9, 0.04):
        discs.append((c + t * u, dr.size[1] + 0.02))
    return discs


def swept(scene: Scene) -> list[tuple[np.ndarray, float]]:
    """Discs along the lane objects[0] is pushed through to the target, with the hand's run-up behind it."""
    obj = scene.objects[0]
    a, b = np.asarray(obj.xy, float), np.asarray(scene.target.pos, float)
    d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
    a = a - d * (obj.footprint + 0.05)
    n = int(np.ceil(np.linalg.norm(b - a) / 0.02)) + 1
    return [(a + t * (b - a), obj.footprint + 0.04) for t in np.linspace(0.0, 1.0, n)]


def sample_free(
    rng: np.random.Generator,
    box: tuple[float, float, float, float],
    radius: float,
    taken: list[tuple[np.ndarray, float]],
    gap: float = 0.02,
    tries: int = 200,
) -> np.ndarray | None:
    """A centre (2,) in box (x0, x1, y0, y1) [m] whose disc of `radius` keeps `gap` from every taken disc.

    Rejection sampling: try t is x = x0 + (x1 - x0) * u[2t], y = y0 + (y1 - y0) * u[2t + 1] (rng.uniform's draws),
    the first clear try wins. The first FIRST tries are tested one by one (most calls find room there), the rest
    drawn and tested at once, then rng is left as though drawn one by one: after the 2 (t + 1) draws of the
    winning try, after all 2 tries when none is clear."""
    x0, x1, y0, y1 = box
    discs = [(float(c[0]), float(c[1]), r + radius + gap) for c, r in taken]
    for _ in range(min(FIRST, tries)):
        px, py = x0 + (x1 - x0) * rng.random(), y0 + (y1 - y0) * rng.random()
        if all(_clear(px - cx, py - cy, need) for cx, cy, need in discs):
            return np.array([px, py])
    rest = tries - FIRST
    if rest <= 0:
        return None
    c = np.array(discs).reshape(-1, 3)
    # squared distances below `low` are in collision however the distance is rounded (_clear's 1e-9 and more)
    low = np.where(c[:, 2] > 0, (c[:, 2] * (1 - 1e-8)) ** 2, -1.0)
    state = rng.bit_generator.state
    u = rng.random(2 * rest)
    xs, ys = x0 + (x1 - x0) * u[0::2], y0 + (y1 - y0) * u[1::2]
    dx, dy = xs[:, None] - c[:, 0], ys[:, None] - c[:, 1]
    for t in np.flatnonzero(~(dx * dx + dy * dy < low).any(1)).tolist():  # the tries not surely blocked, in order
        if all(_clear(float(dx[t, j]), float(dy[t, j]), need) for j, (_, _, need) in enumerate(discs)):
            if t < rest - 1:  # give back the draws after the winning try
                rng.bit_generator.state = state
                rng.random(2 * (t + 1))
            return np.array([xs[t], ys[t]])
    return None


def _clear(dx: float, dy: float, need: float) -> bool:
    """Is _norm((dx, dy)) >= need? The distance in plain floats is within a few ulps of _norm's (numpy's
    dot of a 2-vector goes through BLAS, which may fuse the multiply-add: one rounding instead of two), so
    it decides every case but those within 1e-9 of `need`, which _norm itself decides: the same answers."""
    d = math.sqrt(dx * dx + dy * dy)
    if need <= 0 or d > need * (1 + 1e-9):
        return True
    if d < need * (1 - 1e-9):
        return False
    return _norm(np.array([dx, dy])) >= need


def _norm(d: np.ndarray) -> float:
    """np.linalg.norm of a float vector (it is sqrt(d . d)), without its dispatch."""
    return math.sqrt(d.dot(d))
