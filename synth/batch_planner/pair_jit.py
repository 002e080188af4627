"""pair.between compiled with numba: the two arms' sphere covers against each other at every sample of W pair
segments, one world and one run of samples at a time (no (samples, parts, parts) arrays). pair.py's numpy
`between` is the reference; tests/test_pair.py compares them. Shapes: W worlds, q (W, dof of both) [rad], lengths
[m]."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.arm_kinematics_jit import _fk, fk_args
from synth.batch_planner import sweep
from synth.batch_planner.capsules import Body
from synth.batch_planner.sweep_jit import _point

CHUNK = 8  # samples per run whose far pairs of parts one bound rules out
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
        fk_args(a.kin),
        fk_args(b.kin),
        (*_body(a.body), sweep.reach(a.body, a.kin)[0]),
        (*_body(b.body), sweep.reach(b.body, b.kin)[0]),
        np.ascontiguousarray(width, float),
        float(margin),
    )


@njit(cache=True)
def _centre(frames, link, centre, finger, wid):  # pragma: no cover (compiled)
    """A point fixed in frames[link] (centre (3,)), moved by finger * wid / 2 along the frame's y."""
    return _point(frames[link], centre[0], centre[1] + finger * wid / 2, centre[2])


@njit(cache=True)
def _groups(q0, dq, s, th, dh, base, fl, gl, gc, gf, wid, frames, q, out):  # pragma: no cover (compiled)
    """One arm at share s of its segment: its link frames into `frames`, its parts' bounding-sphere centres into
    out (G, 3)."""
    for i in range(len(q)):
        q[i] = q0[i] + s * dq[i]
    _fk(q, th, dh, base, fl, frames)
    for g in range(len(gl)):
        out[g, 0], out[g, 1], out[g, 2] = _centre(frames, gl[g], gc[g], gf[g], wid)


@njit(cache=True)
def _between(qa0, dqa, qb0, dqb, n, fk_a, fk_b, cover_a, cover_b, width, margin):  # pragma: no cover (compiled)
    """between's kernel. Per world, samples in runs of CHUNK: the parts' bounding spheres at the run's middle,
    grown by how far each part can move within the run (sum over joints of |dq_i| rho_i times the run's half
    length), rule out the pairs clear by `margin` for the whole run; the rest are checked at each sample, their
    spheres where the bounding spheres come within `margin`. fk_*: an arm's fk_args; cover_*: its _body and rho."""
    th_a, dh_a, base_a, fl_a = fk_a
    th_b, dh_b, base_b, fl_b = fk_b
    gl_a, gc_a, gf_a, gr_a, mem_a, sl_a, sc_a, sf_a, sr_a, rho_a = cover_a
    gl_b, gc_b, gf_b, gr_b, mem_b, sl_b, sc_b, sf_b, sr_b, rho_b = cover_b
    W = qa0.shape[0]
    Ga, Gb = len(gl_a), len(gl_b)
    fa, fb = np.empty((qa0.shape[1] + 1, 3, 4)), np.empty((qb0.shape[1] + 1, 3, 4))
    qa, qb = np.empty(qa0.shape[1]), np.empty(qb0.shape[1])
    ca, cb = np.empty((Ga, 3)), np.empty((Gb, 3))
    va, vb = np.empty(Ga), np.empty(Gb)  # each part's speed bound [m per unit of the segment]
    near = np.empty((Ga * Gb, 2), np.int64)
    best = np.full(W, np.inf)
    for w in range(W):
        wa, wb, nw = width[w, 0], width[w, 1], n[w]
        for g in range(Ga):
            va[g] = 0.0
            for i in range(qa.shape[0]):
                va[g] += abs(dqa[w, i]) * rho_a[g, i]
        for g in range(Gb):
            vb[g] = 0.0
            for i in range(qb.shape[0]):
                vb[g] += abs(dqb[w, i]) * rho_b[g, i]
        for a in range(1, nw + 1, CHUNK):
            b = min(a + CHUNK - 1, nw)
            mid, h = (a + b) / 2 / nw, (b - a) / 2 / nw
            _groups(qa0[w], dqa[w], mid, th_a, dh_a, base_a, fl_a, gl_a, gc_a, gf_a, wa, fa, qa, ca)
            _groups(qb0[w], dqb[w], mid, th_b, dh_b, base_b, fl_b, gl_b, gc_b, gf_b, wb, fb, qb, cb)
            k = 0
            for g in range(Ga):
                for x in range(Gb):
                    e0, e1, e2 = ca[g, 0] - cb[x, 0], ca[g, 1] - cb[x, 1], ca[g, 2] - cb[x, 2]
                    d = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) - gr_a[g] - gr_b[x] - h * (va[g] + vb[x])
                    if d >= margin:
                        best[w] = min(best[w], d)
                    else:
                        near[k, 0], near[k, 1] = g, x
                        k += 1
            if k == 0:
                continue
            for j in range(a, b + 1):
                _groups(qa0[w], dqa[w], j / nw, th_a, dh_a, base_a, fl_a, gl_a, gc_a, gf_a, wa, fa, qa, ca)
                _groups(qb0[w], dqb[w], j / nw, th_b, dh_b, base_b, fl_b, gl_b, gc_b, gf_b, wb, fb, qb, cb)
                for p in range(k):
                    g, x = near[p, 0], near[p, 1]
                    e0, e1, e2 = ca[g, 0] - cb[x, 0], ca[g, 1] - cb[x, 1], ca[g, 2] - cb[x, 2]
                    d = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) - gr_a[g] - gr_b[x]
                    if d >= margin:
                        best[w] = min(best[w], d)
                        continue
                    for y in mem_a[g]:  # the pair's spheres: each of one part's against the other's bounding sphere
                        p0, p1, p2 = _centre(fa, sl_a[y], sc_a[y], sf_a[y], wa)
                        e0, e1, e2 = p0 - cb[x, 0], p1 - cb[x, 1], p2 - cb[x, 2]
                        d = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) - sr_a[y] - gr_b[x]
                        if d >= margin:
                            best[w] = min(best[w], d)
                            continue
                        for z in mem_b[x]:
                            r0, r1, r2 = _centre(fb, sl_b[z], sc_b[z], sf_b[z], wb)
                            e0, e1, e2 = p0 - r0, p1 - r1, p2 - r2
                            best[w] = min(best[w], math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) - sr_a[y] - sr_b[z])
    return best - margin
