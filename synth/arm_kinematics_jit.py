"""Forward kinematics and damped-least-squares IK of synth/arm_kinematics.py compiled with numba, one world at a time.

synth/arm_kinematics.py is the reference (numpy, batched over worlds): the same arithmetic here in scalar code,
so a 6x6 solve per iteration costs no batched LAPACK call and no array is built per step. The IK's results
equal the reference's to rounding (the 6x6 system is solved by Cholesky instead of LU):
tests/test_sweep.py compares them. Shapes: W worlds, q (W, dof) [rad], positions [m].
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.arm_kinematics import Chain, Kinematics


def fk_args(kin: Kinematics) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(theta (dof,), dh (dof, 4) rows a, d, cos alpha, sin alpha, base (3, 4), flange (3, 4)): what _fk reads."""
    dh = np.array(kin.dh, float).reshape(kin.dof, 4)
    return kin.theta.astype(float), dh, kin.base[:3].copy(), kin.flange[:3].copy()


def ik(
    kin: Kinematics,
    pos: np.ndarray,
    rot: np.ndarray,
    q0: np.ndarray,
    iters: int = 40,
    tol_pos: float = 5e-4,
    tol_rot: float = 5e-3,
    damping: float = 1e-2,
    max_step: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """Kinematics.ik, compiled: damped least squares towards TCP poses pos (W, 3) [m], rot (W, 3, 3) from q0
    (W, dof) within the joint limits. Returns (q (W, dof), converged (W,) bool)."""
    return _ik(
        np.ascontiguousarray(pos, float),
        np.ascontiguousarray(rot, float),
        np.array(q0, float),
        *fk_args(kin),
        float(kin.emb.gripper.tcp_offset),
        np.asarray(kin.lower, float),
        np.asarray(kin.upper, float),
        int(iters),
        float(tol_pos),
        float(tol_rot),
        float(damping),
        float(max_step),
    )


def hands(kin: Kinematics, q: np.ndarray) -> Chain:
    """Kinematics.fk(q, links=False), compiled: the hand poses (F, 3, 4) and TCP positions (F, 3) [m] of
    configurations q (F, dof), one at a time (no (3, F) temporaries per joint)."""
    hand = _hands(np.ascontiguousarray(q, float), *fk_args(kin))
    tcp = hand[:, :, 3] + kin.emb.gripper.tcp_offset * hand[:, :, 2]
    return Chain(hand[:, None][:, :0], hand, tcp, hand[:, None][:, :0])


@njit(cache=True)
def _hands(q, theta, dh, base, flange):  # pragma: no cover (compiled)
    F, dof = q.shape
    out = np.empty((F, 3, 4))
    frames = np.empty((dof + 1, 3, 4))
    for f in range(F):
        _fk(q[f], theta, dh, base, flange, frames)
        out[f] = frames[dof]
    return out


@njit(cache=True)
def _fk(q, theta, dh, base, flange, out):  # pragma: no cover (compiled)
    """Link frames then the hand's, out (dof + 1, 3, 4), of one configuration q (dof,): Kinematics.fk's
    arithmetic in its order."""
    X0, X1, X2 = base[0, 0], base[1, 0], base[2, 0]
    Y0, Y1, Y2 = base[0, 1], base[1, 1], base[2, 1]
    Z0, Z1, Z2 = base[0, 2], base[1, 2], base[2, 2]
    P0, P1, P2 = base[0, 3], base[1, 3], base[2, 3]
    for i in range(len(q)):
        a, d, ca, sa = dh[i, 0], dh[i, 1], dh[i, 2], dh[i, 3]
        if a != 0.0:
            P0 += a * X0
            P1 += a * X1
            P2 += a * X2
        if d != 0.0:
            u, v = -d * sa, d * ca
            P0 += Y0 * u
            P1 += Y1 * u
            P2 += Y2 * u
            P0 += Z0 * v
            P1 += Z1 * v
            P2 += Z2 * v
        y0, y1, y2 = Y0 * ca + sa * Z0, Y1 * ca + sa * Z1, Y2 * ca + sa * Z2
        Z0, Z1, Z2 = Z0 * ca - sa * Y0, Z1 * ca - sa * Y1, Z2 * ca - sa * Y2
        th = q[i] + theta[i]
        c, s = math.cos(th), math.sin(th)
        X0, X1, X2, Y0, Y1, Y2 = (
            X0 * c + s * y0,
            X1 * c + s * y1,
            X2 * c + s * y2,
            y0 * c - s * X0,
            y1 * c - s * X1,
            y2 * c - s * X2,
        )
        out[i, 0, 0], out[i, 1, 0], out[i, 2, 0] = X0, X1, X2
        out[i, 0, 1], out[i, 1, 1], out[i, 2, 1] = Y0, Y1, Y2
        out[i, 0, 2], out[i, 1, 2], out[i, 2, 2] = Z0, Z1, Z2
        out[i, 0, 3], out[i, 1, 3], out[i, 2, 3] = P0, P1, P2
    h = len(q)
    for j in range(3):
        r0, r1, r2 = flange[0, j], flange[1, j], flange[2, j]
        out[h, 0, j] = r0 * X0 + r1 * Y0 + r2 * Z0
        out[h, 1, j] = r0 * X1 + r1 * Y1 + r2 * Z1
        out[h, 2, j] = r0 * X2 + r1 * Y2 + r2 * Z2
    t0, t1, t2 = flange[0, 3], flange[1, 3], flange[2, 3]
    out[h, 0, 3] = P0 + t0 * X0 + t1 * Y0 + t2 * Z0
    out[h, 1, 3] = P1 + t0 * X1 + t1 * Y1 + t2 * Z1
    out[h, 2, 3] = P2 + t0 * X2 + t1 * Y2 + t2 * Z2


@njit(cache=True)
def _ik(
    pos, rot, q, theta, dh, base, flange, tcp_offset, lower, upper, iters, tol_pos, tol_rot, damping, max_step
):  # pragma: no cover (compiled)
    W, dof = q.shape
    done = np.zeros(W, np.bool_)
    frames = np.empty((dof + 1, 3, 4))
    J = np.empty((6, dof))
    A = np.empty((6, 6))
    e = np.empty(6)
    y = np.empty(6)
    dq = np.empty(dof)
    lam = damping**2
    for w in range(W):
        qw = q[w]
        for _ in range(iters):
            _fk(qw, theta, dh, base, flange, frames)
            hand = frames[dof]
            t0 = hand[0, 3] + tcp_offset * hand[0, 2]
            t1 = hand[1, 3] + tcp_offset * hand[1, 2]
            t2 = hand[2, 3] + tcp_offset * hand[2, 2]
            e[0], e[1], e[2] = pos[w, 0] - t0, pos[w, 1] - t1, pos[w, 2] - t2
            r0 = r1 = r2 = 0.0  # sum over the axes k of hand axis k x target axis k
            for k in range(3):
                a0, a1, a2 = hand[0, k], hand[1, k], hand[2, k]
                b0, b1, b2 = rot[w, 0, k], rot[w, 1, k], rot[w, 2, k]
                r0 += a1 * b2 - a2 * b1
                r1 += a2 * b0 - a0 * b2
                r2 += a0 * b1 - a1 * b0
            e[3], e[4], e[5] = 0.5 * r0, 0.5 * r1, 0.5 * r2
            ep = math.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])
            er = math.sqrt(e[3] * e[3] + e[4] * e[4] + e[5] * e[5])
            if ep < tol_pos and er < tol_rot:
                done[w] = True
                break
            for i in range(dof):  # the geometric Jacobian: z_i x (tcp - p_i), z_i
                z0, z1, z2 = frames[i, 0, 2], frames[i, 1, 2], frames[i, 2, 2]
                d0, d1, d2 = t0 - frames[i, 0, 3], t1 - frames[i, 1, 3], t2 - frames[i, 2, 3]
                J[0, i], J[1, i], J[2, i] = z1 * d2 - z2 * d1, z2 * d0 - z0 * d2, z0 * d1 - z1 * d0
                J[3, i], J[4, i], J[5, i] = z0, z1, z2
            for r in range(6):  # A = J J^T + damping^2 I, lower triangle
                for c in range(r + 1):
                    acc = 0.0
                    for i in range(dof):
                        acc += J[r, i] * J[c, i]
                    A[r, c] = acc + (lam if r == c else 0.0)
            for r in range(6):  # Cholesky in place (A is positive definite), then y = A^-1 e
                for c in range(r + 1):
                    acc = A[r, c]
                    for k in range(c):
                        acc -= A[r, k] * A[c, k]
                    A[r, c] = math.sqrt(acc) if r == c else acc / A[c, c]
            for r in range(6):
                acc = e[r]
                for k in range(r):
                    acc -= A[r, k] * y[k]
                y[r] = acc / A[r, r]
            for r in range(5, -1, -1):
                acc = y[r]
                for k in range(r + 1, 6):
                    acc -= A[k, r] * y[k]
                y[r] = acc / A[r, r]
            step = 0.0
            for i in range(dof):
                acc = 0.0
                for r in range(6):
                    acc += J[r, i] * y[r]
                dq[i] = acc
                step = max(step, abs(acc))
            scale = min(1.0, max_step / max(step, 1e-12))
            for i in range(dof):
                qw[i] = min(max(qw[i] + dq[i] * scale, lower[i]), upper[i])
    return q, done
