"""pair.between compiled with numba: the two arms' sphere covers against each other at every sample of W pair
segments, one world and one sample at a time (no (samples, parts, parts) arrays). pair.py's numpy `between` is the
reference; tests/test_pair.py compares them. Shapes: W worlds, q (W, dof of both) [rad], lengths [m]."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.arm_kinematics_jit import _fk, fk_args
from synth.batch_planner.capsules import Body
from synth.batch_planner.sweep_jit import _point

_ARRAY = np.ndarray
Cover = tuple[_ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY]  # what _body gives, in order


def _body(body: Body) -> Cover:
    """What the kernel reads of a sphere cover: group link, centre, finger, radius, members; sphere link, centre,
    finger, radius."""
    return (
        body.g_link.astype(np.int64),
        body.g_centre.astype(float),
        body.g_finger.astype(float),
        body.g_radius.astype(float),
        body.members.astype(np.int64),
        body.link.astype(np.int64),
        body.centre.astype(float),
        body.finger.astype(float),
        body.radius.astype(float),
    )


def between(arms: list, q0: np.ndarray, q1: np.ndarray, n: np.ndarray, width: np.ndarray, margin: float) -> np.ndarray:
    """(W,) pair.between, compiled: the smallest clearance [m] minus `margin` between the two arms' covers over the
    samples j = 1..n (W,) of q0 -> q1 (W, dof of both); width (W, 2) [m] each gripper's opening."""
    a, b = arms
    q0 = np.ascontiguousarray(q0, float)
    dq = np.ascontiguousarray(q1 - q0, float)
    return _between(
        q0[:, a.cols].copy(),
        dq[:, a.cols].copy(),
        q0[:, b.cols].copy(),
        dq[:, b.cols].copy(),
        np.asarray(n, np.int64),
        *fk_args(a.kin),
        *fk_args(b.kin),
        *_body(a.body),
        *_body(b.body),
        np.ascontiguousarray(width, float),
        float(margin),
    )


@njit(cache=True)
def _centre(frames, link, centre, finger, wid):  # pragma: no cover (compiled)
    """A point fixed in frames[link] (centre (3,)), moved by finger * wid / 2 along the frame's y."""
    return _point(frames[link], centre[0], centre[1] + finger * wid / 2, centre[2])


@njit(cache=True)
def _between(
    qa0,
    dqa,
    qb0,
    dqb,
    n,
    th_a,
    dh_a,
    base_a,
    fl_a,
    th_b,
    dh_b,
    base_b,
    fl_b,
    gl_a,
    gc_a,
    gf_a,
    gr_a,
    mem_a,
    sl_a,
    sc_a,
    sf_a,
    sr_a,
    gl_b,
    gc_b,
    gf_b,
    gr_b,
    mem_b,
    sl_b,
    sc_b,
    sf_b,
    sr_b,
    width,
    margin,
):  # pragma: no cover (compiled)
    """between's kernel: per world and sample, the parts' bounding spheres, then where a pair of them is within
    `margin` their spheres."""
    W = qa0.shape[0]
    fa, fb = np.empty((qa0.shape[1] + 1, 3, 4)), np.empty((qb0.shape[1] + 1, 3, 4))
    qa, qb = np.empty(qa0.shape[1]), np.empty(qb0.shape[1])
    ca, cb = np.empty((len(gl_a), 3)), np.empty((len(gl_b), 3))
    best = np.full(W, np.inf)
    for w in range(W):
        wa, wb = width[w, 0], width[w, 1]
        for j in range(1, n[w] + 1):
            s = j / n[w]
            for i in range(len(qa)):
                qa[i] = qa0[w, i] + s * dqa[w, i]
            for i in range(len(qb)):
                qb[i] = qb0[w, i] + s * dqb[w, i]
            _fk(qa, th_a, dh_a, base_a, fl_a, fa)
            _fk(qb, th_b, dh_b, base_b, fl_b, fb)
            for g in range(len(gl_a)):
                ca[g, 0], ca[g, 1], ca[g, 2] = _centre(fa, gl_a[g], gc_a[g], gf_a[g], wa)
            for g in range(len(gl_b)):
                cb[g, 0], cb[g, 1], cb[g, 2] = _centre(fb, gl_b[g], gc_b[g], gf_b[g], wb)
            for g in range(len(gl_a)):
                for h in range(len(gl_b)):
                    d0, d1, d2 = ca[g, 0] - cb[h, 0], ca[g, 1] - cb[h, 1], ca[g, 2] - cb[h, 2]
                    d = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2) - gr_a[g] - gr_b[h]
                    if d >= margin:
                        best[w] = min(best[w], d)
                        continue
                    for x in mem_a[g]:  # the pair's spheres
                        p0, p1, p2 = _centre(fa, sl_a[x], sc_a[x], sf_a[x], wa)
                        for y in mem_b[h]:
                            r0, r1, r2 = _centre(fb, sl_b[y], sc_b[y], sf_b[y], wb)
                            e0, e1, e2 = p0 - r0, p1 - r1, p2 - r2
                            best[w] = min(best[w], math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) - sr_a[x] - sr_b[y])
    return best - margin
