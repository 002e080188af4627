"""The batched planner's fallback for a transit whose straight joint-space segment collides: a detour over the
scene, for the failed worlds only, checked as the straight segments are.

The detour of a transit q0 -> q1 goes through two via configurations: the TCP of each end raised to one height,
LIFTS above the higher of the two ends (the lowest that clears wins), each keeping its end's orientation and
solved by IK from its end. Its three legs, up (q0 -> via 0), over (via 0 -> via 1) and down (via 1 -> q1), are
straight joint-space segments swept with the transit's own margin, touches, gripper width and carried object.
A via that turns a joint further than synth.skill.FLIP from its end (a wrist flip on a short move) is refused.
Physics mode plans the same transits with OMPL where their straight line collides (planners/transit.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synth.arm_kinematics import Chain
from synth.batch_planner.capsules import Obstacles
from synth.skill import FLIP

LIFTS = (0.08, 0.16, 0.28)  # [m] heights of a detour's top above the higher end of its transit, tried in turn
Sweep = Callable[..., np.ndarray]  # Planner.segment_clear


@dataclass(frozen=True)
class Transit:
    """W transits to detour: ends q0, q1 (W, dof) [rad] and what their sweep reads: obstacles, allowed (W, O) the
    obstacles they may touch, margin [m], the gripper width (W,) [m], the carried object (centres (W, K, 3) [m] in
    the hand frame, radii (W, K)) or None."""

    q0: np.ndarray
    q1: np.ndarray
    obs: Obstacles
    allowed: np.ndarray
    margin: float
    width: np.ndarray
    carry: tuple[np.ndarray, np.ndarray] | None

    def take(self, idx: np.ndarray) -> Transit:
        """The transits idx."""
        obs = Obstacles(*(getattr(self.obs, f)[idx] for f in Obstacles.__dataclass_fields__))
        carry = None if self.carry is None else (self.carry[0][idx], self.carry[1][idx])
        return Transit(self.q0[idx], self.q1[idx], obs, self.allowed[idx], self.margin, self.width[idx], carry)


def legs(t: Transit, via: np.ndarray, sweep: Sweep) -> np.ndarray:
    """(W,) the least clearance [m] beyond the margin of the detours q0 -> via[:, 0] -> via[:, 1] -> q1, via
    (W, 2, dof) [rad]."""
    ends = (t.q0, via[:, 0], via[:, 1], t.q1)
    clear = [sweep(ends[i], ends[i + 1], t.obs, t.allowed, t.margin, t.width, t.carry) for i in range(3)]
    return np.min(clear, axis=0)


def detour(
    t: Transit,
    hands: Callable[[np.ndarray], Chain],
    ik: Callable[..., tuple[np.ndarray, np.ndarray]],
    sweep: Sweep,
) -> tuple[np.ndarray, np.ndarray]:
    """(via (W, 2, dof) [rad], clearance (W,) [m] beyond the margin) of the W transits t: the detour at the
    lowest of LIFTS whose IK converges and whose legs are clear; where none is, via is NaN and clearance -inf.
    hands, ik and sweep: the planner's (Planner.hands, Planner.ik, Planner.segment_clear)."""
    W, dof = t.q0.shape
    via, best = np.full((W, 2, dof), np.nan), np.full(W, -np.inf)
    a, b = hands(t.q0), hands(t.q1)
    todo = np.arange(W)
    for lift in LIFTS:
        if not len(todo):
            break
        top = np.maximum(a.tcp[todo, 2], b.tcp[todo, 2]) + lift
        v = np.empty((len(todo), 2, dof))
        ok = np.ones(len(todo), bool)
        for k, (end, q) in enumerate(((a, t.q0), (b, t.q1))):
            pos = np.c_[end.tcp[todo, :2], top]
            v[:, k], conv = ik(pos, end.tcp_rot[todo], q[todo], iters=30)
            ok &= conv & (np.abs(v[:, k] - q[todo]).max(1) <= FLIP)
        w = todo[ok]
        if len(w):
            c = legs(t.take(w), v[ok], sweep)
            good = c >= 0
            via[w[good]], best[w[good]] = v[ok][good], c[good]
        todo = todo[np.isnan(via[todo, 0, 0])]
    return via, best


def detours(
    clear: dict[str, np.ndarray],
    transits: dict[str, Transit],
    hands: Callable[[np.ndarray], Chain],
    ik: Callable[..., tuple[np.ndarray, np.ndarray]],
    sweep: Sweep,
) -> dict[str, np.ndarray]:
    """{phase: via (W, 2, dof) [rad]} per transit of a script's check: its detour where its straight segment
    collides and every segment that is not a transit is clear (clear: {phase: (W,)} clearance [m] beyond the
    margin), NaN elsewhere; the clearances of the detoured transits become their detours' (in place)."""
    rest = np.ones(len(next(iter(clear.values()))), bool)
    for p, c in clear.items():
        if p not in transits:
            rest &= c >= 0
    vias = {}
    for p, t in transits.items():
        vias[p] = np.full((*t.q0.shape[:1], 2, t.q0.shape[1]), np.nan)
        w = np.flatnonzero(rest & (clear[p] < 0))
        if len(w):
            v, c = detour(t.take(w), hands, ik, sweep)
            found = ~np.isnan(v[:, 0, 0])
            vias[p][w[found]] = v[found]
            clear[p][w[found]] = c[found]
    return vias
