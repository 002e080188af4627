"""Batched forward kinematics, Jacobians and damped-least-squares IK of an embodiment, in numpy.

Frames follow synth/robot.py exactly: body i sits at the modified-DH offset of row i in its parent,
turned by Rz(q_i); the hand follows the flange row turned by the gripper's mount yaw; the TCP is
`tcp_offset` along the hand's z. Shapes: q (W, dof) [rad]; positions [m] in the world frame (the
robot base at `base`); rotations (W, 3, 3); a pose is (3, 4): rotation, then position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.embodiment import Embodiment


def _row(a: float, alpha: float, d: float, theta: float) -> np.ndarray:
    """(4, 4) child pose of a modified-DH row before its joint turns: Rx(alpha) Tx(a) Rz(theta) Tz(d)."""
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    rz = np.array([[ct, -st, 0], [st, ct, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = rx @ rz
    T[:3, 3] = [a, -d * sa, d * ca]
    return T


@dataclass
class Chain:
    """Link frames of a batch of configurations.

    frames: (W, dof, 3, 4) pose of each moving link (joint i turns about its z); hand: (W, 3, 4);
    tcp: (W, 3) [m]; poses: (W, dof + 1, 3, 4) the links then the hand, when fk made it (frames and hand
    are views into it, and it is a view into one array laid out world-last, which is how fk computes them).
    """

    frames: np.ndarray
    hand: np.ndarray
    tcp: np.ndarray
    poses: np.ndarray | None = None

    @property
    def tcp_rot(self) -> np.ndarray:
        """(W, 3, 3) TCP orientation (the hand's)."""
        return self.hand[:, :, :3]


class Kinematics:
    """FK, Jacobian and IK of one embodiment with its base at world position `base` (3,) [m], turned by `yaw`
    [rad] about the vertical (one arm of a pair)."""

    def __init__(self, emb: Embodiment, base: np.ndarray, yaw: float = 0.0):
        self.emb = emb
        self.dof = emb.dof
        self.base = np.eye(4)
        self.base[:3, 3] = base
        if yaw:
            self.base[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        self.rows = np.stack([_row(j.a, j.alpha, j.d, j.theta) for j in emb.joints])  # (dof, 4, 4)
        self.theta = np.array([j.theta for j in emb.joints])
        self.dh = [(j.a, j.d, np.cos(j.alpha), np.sin(j.alpha)) for j in emb.joints]
        mount = _row(0.0, 0.0, 0.0, emb.gripper.mount_yaw)
        self.flange = _row(*emb.flange) @ mount
        self.lower, self.upper = emb.lower, emb.upper
        self.home = np.array(emb.home)

    def fk(self, q: np.ndarray, links: bool = True) -> Chain:
        """Link frames of q (W, dof) (with links=False only the hand's: frames and poses are then empty).
        Each row turns the parent's axes by Rx(alpha), moves its origin by (a, -d sin alpha, d cos alpha) in
        them, then turns them by Rz(theta + q_i): a few multiply-adds on (3, W) arrays per joint."""
        q = np.asarray(q, float)
        W = len(q)
        th = (q + self.theta).T  # (dof, W)
        c, s = np.cos(th), np.sin(th)
        out = np.empty((self.dof + 1 if links else 1, 4, 3, W))  # per link, the hand: x, y, z axes, origin (3, W)
        X, Y, Z, P = (np.repeat(self.base[:3, k, None], W, 1) for k in range(4))
        t1, t2 = np.empty((3, W)), np.empty((3, W))  # in-place arithmetic: no array allocated per step
        for i, (a, d, ca, sa) in enumerate(self.dh):
            if a:
                P += a * X
            if d:
                P += np.multiply(Y, -d * sa, out=t1)
                P += np.multiply(Z, d * ca, out=t1)
            np.multiply(Y, ca, out=t1)
            t1 += sa * Z
            np.multiply(Z, ca, out=t2)
            t2 -= sa * Y
            Y, Z, t1, t2 = t1, t2, Y, Z  # Y, Z turned by alpha about X
            np.multiply(X, c[i], out=t1)
            t1 += s[i] * Y
            np.multiply(Y, c[i], out=t2)
            t2 -= s[i] * X
            X, Y, t1, t2 = t1, t2, X, Y  # X, Y turned by theta + q_i about Z
            if links:
                out[i] = X, Y, Z, P
        R, t = self.flange[:3, :3], self.flange[:3, 3]
        out[-1, :3] = [R[0, j] * X + R[1, j] * Y + R[2, j] * Z for j in range(3)]  # the hand's axes: link axes @ R
        out[-1, 3] = P + t[0] * X + t[1] * Y + t[2] * Z
        view = out.transpose(3, 0, 2, 1)  # (W, dof + 1, 3, 4)
        hand = view[:, -1]
        tcp = hand[:, :, 3] + self.emb.gripper.tcp_offset * hand[:, :, 2]
        return Chain(view[:, :-1], hand, tcp, view if links else view[:, :0])

    def jacobian(self, ch: Chain) -> np.ndarray:
        """(W, 6, dof) geometric Jacobian of the TCP in the world: linear rows, then angular."""
        z = ch.frames[:, :, :3, 2]  # (W, dof, 3) joint axes
        p = ch.frames[:, :, :3, 3]
        lin = cross(z, ch.tcp[:, None, :] - p)
        return np.concatenate([lin, z], axis=2).transpose(0, 2, 1)

    def ik(
        self,
        pos: np.ndarray,
        rot: np.ndarray,
        q0: np.ndarray,
        iters: int = 40,
        tol_pos: float = 5e-4,
        tol_rot: float = 5e-3,
        damping: float = 1e-2,
        max_step: float = 0.4,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Damped least squares towards TCP poses pos (W, 3) [m], rot (W, 3, 3), from q0 (W, dof), within
        the joint limits. Returns (q (W, dof), converged (W,) bool); a world stops once it converged, so
        its result does not depend on the other worlds of the batch."""
        q = np.array(q0, float)
        done = np.zeros(len(q), bool)
        active = np.arange(len(q))
        eye = (damping**2) * np.eye(6)
        rot_t = rot.transpose(0, 2, 1)  # rows are the target's axes
        for _ in range(iters):
            ch = self.fk(q[active])
            e = np.concatenate(
                [pos[active] - ch.tcp, 0.5 * cross(ch.tcp_rot.transpose(0, 2, 1), rot_t[active]).sum(1)], axis=1
            )
            conv = (np.linalg.norm(e[:, :3], axis=1) < tol_pos) & (np.linalg.norm(e[:, 3:], axis=1) < tol_rot)
            done[active[conv]] = True
            if conv.all():
                break
            keep = ~conv
            active, e = active[keep], e[keep]
            J = self.jacobian(Chain(ch.frames[keep], ch.hand[keep], ch.tcp[keep]))
            Jt = J.transpose(0, 2, 1)
            dq = (Jt @ np.linalg.solve(J @ Jt + eye, e[:, :, None]))[..., 0]
            step = np.abs(dq).max(1, keepdims=True)
            dq *= np.minimum(1.0, max_step / np.maximum(step, 1e-12))
            q[active] = np.clip(q[active] + dq, self.lower, self.upper)
        return q, done


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products along the last axis (np.cross without its overhead)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
