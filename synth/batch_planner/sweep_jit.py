"""sweep.py's segment clearance compiled with numba: the same bisection, world by world.

sweep.py is the reference (numpy, breadth-first over all worlds at once); this is the same
algorithm depth-first within one world at a time, in scalar code, so no array is built per level and no
pair is sorted: each interval [a, b] of samples is placed once (forward kinematics at its middle), its
remaining (part, obstacle) pairs are checked with the part grown by how far it can move within the
interval, the clear ones leave, and the rest go on to both halves, down to single samples checked sphere
by sphere. Every pair meets the same intervals as in the reference, so the verdict and the clearance are
the reference's (to rounding: tests/test_sweep.py compares them). Shapes as in sweep.py: W
worlds, G robot parts (+1 for a carried object), O obstacles, K spheres per part.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.arm_kinematics import Kinematics
from synth.arm_kinematics_jit import _fk, fk_args
from synth.batch_planner.capsules import PAD, Body, Obstacles
from synth.batch_planner.sweep import motion, side_by_side


def segment_clearance(
    kin: Kinematics,
    body: Body,
    q0: np.ndarray,
    q1: np.ndarray,
    n: np.ndarray,
    obs: Obstacles,
    allowed: np.ndarray,
    margin: float,
    width: np.ndarray,
    carry: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(W,) sweep.segment_clearance, compiled: the smallest clearance [m] minus `margin` over the
    samples j = 1..n (W,) of the segments q0 -> q1 (W, dof) to the obstacles not `allowed` (W, O)."""
    W = len(q0)
    q0 = np.ascontiguousarray(q0, float)
    dq = np.ascontiguousarray(q1 - q0, float)
    speed, bend, g_radius, held = motion(body, kin, dq, carry)
    if carry is not None:
        c_local, c_radii = np.ascontiguousarray(carry[0], float), np.ascontiguousarray(carry[1], float)
    else:
        held, c_local, c_radii = np.zeros((W, 3)), np.zeros((W, 1, 3)), np.zeros((W, 1))
    fields = side_by_side(obs)
    check = ~allowed & (obs.role != PAD)
    return _clearance(
        q0,
        dq,
        np.asarray(n, np.int64),
        *fk_args(kin),
        body.g_link.astype(np.int64),
        body.g_centre.astype(float),
        body.g_finger.astype(float),
        np.ascontiguousarray(g_radius, float),
        np.ascontiguousarray(speed, float),
        np.ascontiguousarray(bend, float),
        np.ascontiguousarray(held, float),
        body.link.astype(np.int64),
        body.centre.astype(float),
        body.finger.astype(float),
        body.radius.astype(float),
        body.members.astype(np.int64),
        c_local,
        c_radii,
        np.ascontiguousarray(fields, float),
        np.ascontiguousarray(check),
        np.ascontiguousarray(width, float),
        float(margin),
    )


@njit(cache=True)
def _sdf(p0, p1, p2, f):  # pragma: no cover (compiled)
    """capsules.sdf of the point (p0, p1, p2) [m] to the obstacle with fields f (10,)."""
    d0, d1, d2 = p0 - f[0], p1 - f[1], p2 - f[2]
    cos, sin = f[3], f[4]
    x = abs(cos * d0 + sin * d1)
    y = abs(-sin * d0 + cos * d1)
    z = abs(d2)
    if f[9] > 0:
        radial = math.hypot(x, y) - f[5]
        qy = -np.inf
    else:
        radial = x - f[5]
        qy = y - f[6]
    qz = z - f[7]
    out = math.sqrt(max(radial, 0.0) ** 2 + max(qy, 0.0) ** 2 + max(qz, 0.0) ** 2)
    return out + min(max(max(radial, qy), qz), 0.0) - f[8]


@njit(cache=True)
def _point(T, l0, l1, l2):  # pragma: no cover (compiled)
    """T (3, 4) applied to the point (l0, l1, l2)."""
    return (
        T[0, 0] * l0 + T[0, 1] * l1 + T[0, 2] * l2 + T[0, 3],
        T[1, 0] * l0 + T[1, 1] * l1 + T[1, 2] * l2 + T[1, 3],
        T[2, 0] * l0 + T[2, 1] * l1 + T[2, 2] * l2 + T[2, 3],
    )


@njit(cache=True)
def _pairs(check, parts, pg, po):  # pragma: no cover (compiled)
    """Fill pg, po with every (part, obstacle) pair to check, part by part: parts 0..parts-1 against the
    obstacles where `check` (O,) holds; returns how many."""
    k = 0
    for g in range(parts):
        for o in range(len(check)):
            if check[o]:
                pg[k], po[k] = g, o
                k += 1
    return k


@njit(cache=True)
def _growth(frames, c0, c1, c2, rad, speed, bend, h):  # pragma: no cover (compiled)
    """How far [m] a part (centre (c0, c1, c2) [m], radius `rad` [m]) can move within `h` of a segment either side
    of the pose whose joint frames are `frames` (dof + 1, 3, 4): each joint's lever arm times the part's
    `speed` (dof,) through it, plus `bend` * h."""
    acc = 0.0
    for i in range(len(speed)):
        r0, r1, r2 = c0 - frames[i, 0, 3], c1 - frames[i, 1, 3], c2 - frames[i, 2, 3]
        along = r0 * frames[i, 0, 2] + r1 * frames[i, 1, 2] + r2 * frames[i, 2, 2]
        dist2 = r0 * r0 + r1 * r1 + r2 * r2
        acc += (math.sqrt(max(dist2 - along * along, 0.0)) + rad) * speed[i]
    return (acc + bend * h) * h


@njit(cache=True)
def _spheres(frames, members, s_link, s_centre, s_finger, s_radius, wid, f):  # pragma: no cover (compiled)
    """The smallest clearance [m] of a robot part's spheres `members` (K,) to the obstacle with fields f (10,),
    the fingers `wid` [m] apart."""
    exact = np.inf
    for m in range(len(members)):
        sph = members[m]
        T = frames[s_link[sph]]
        p0, p1, p2 = _point(T, s_centre[sph, 0], s_centre[sph, 1] + s_finger[sph] * wid / 2, s_centre[sph, 2])
        exact = min(exact, _sdf(p0, p1, p2, f) - s_radius[sph])
    return exact


@njit(cache=True)
def _carried(T, local, radii, f):  # pragma: no cover (compiled)
    """The smallest clearance [m] of a carried object's spheres (`local` (K, 3) [m] in the flange frame T (3, 4),
    `radii` (K,) [m]) to the obstacle with fields f (10,)."""
    exact = np.inf
    for m in range(len(radii)):
        p0, p1, p2 = _point(T, local[m, 0], local[m, 1], local[m, 2])
        exact = min(exact, _sdf(p0, p1, p2, f) - radii[m])
    return exact


@njit(cache=True)
def _clearance(
    q0,
    dq,
    n,
    theta,
    dh,
    base,
    flange,
    g_link,
    g_centre,
    g_finger,
    g_radius,
    speed,
    bend,
    held,
    s_link,
    s_centre,
    s_finger,
    s_radius,
    members,
    c_local,
    c_radii,
    fields,
    check,
    width,
    margin,
):  # pragma: no cover (compiled)
    """segment_clearance's kernel: world by world, a stack of sample intervals [a, b], each with its pairs in doubt."""
    W, dof = q0.shape
    parts, O = speed.shape[1], fields.shape[1]
    G = len(g_link)
    best = np.full(W, np.inf)
    frames = np.empty((dof + 1, 3, 4))
    q = np.empty(dof)
    depth = 2
    while (1 << (depth - 2)) < max(1, n.max()):
        depth += 1
    cap = parts * O * (depth + 2)
    pg, po = np.empty(cap, np.int64), np.empty(cap, np.int64)
    st_a, st_b = np.empty(2 * depth + 4, np.int64), np.empty(2 * depth + 4, np.int64)
    st_at, st_n = np.empty(2 * depth + 4, np.int64), np.empty(2 * depth + 4, np.int64)
    for w in range(W):
        k = _pairs(check[w], parts, pg, po)
        if k == 0:
            continue
        st_a[0], st_b[0], st_at[0], st_n[0] = 1, n[w], 0, k
        sp = 1
        nw = n[w]
        wid = width[w]
        while sp > 0:
            sp -= 1
            a, b, at, cnt = st_a[sp], st_b[sp], st_at[sp], st_n[sp]
            s = ((a + b) / 2) / nw
            for i in range(dof):
                q[i] = q0[w, i] + s * dq[w, i]
            _fk(q, theta, dh, base, flange, frames)
            h = (b - a) / (2 * nw)
            kept = 0
            last = -1
            c0 = c1 = c2 = grow = 0.0
            for j in range(at, at + cnt):
                g, o = pg[j], po[j]
                if g != last:  # the part's centre and growth at this interval, once per part
                    last = g
                    if g < G:  # a robot part; the fingers' parts move with the width
                        c0, c1, c2 = _point(
                            frames[g_link[g]], g_centre[g, 0], g_centre[g, 1] + g_finger[g] * wid / 2, g_centre[g, 2]
                        )
                    else:  # the carried object, in the flange frame
                        c0, c1, c2 = _point(frames[dof], held[w, 0], held[w, 1], held[w, 2])
                    grow = _growth(frames, c0, c1, c2, g_radius[w, g], speed[w, g], bend[w, g], h)
                d = _sdf(c0, c1, c2, fields[w, o]) - (g_radius[w, g] + grow)
                if d >= margin:
                    best[w] = min(best[w], d)
                elif a == b:  # a single sample: the part's own spheres
                    if g < G:
                        exact = _spheres(frames, members[g], s_link, s_centre, s_finger, s_radius, wid, fields[w, o])
                    else:
                        exact = _carried(frames[dof], c_local[w], c_radii[w], fields[w, o])
                    best[w] = min(best[w], exact)
                else:
                    pg[at + kept], po[at + kept] = g, o
                    kept += 1
            if kept and a < b:  # both halves, each with the pairs still in doubt
                for j in range(kept):
                    pg[at + kept + j], po[at + kept + j] = pg[at + j], po[at + j]
                mid = (a + b) // 2
                st_a[sp], st_b[sp], st_at[sp], st_n[sp] = a, mid, at, kept
                st_a[sp + 1], st_b[sp + 1], st_at[sp + 1], st_n[sp + 1] = mid + 1, b, at + kept, kept
                sp += 2
    return best - margin
