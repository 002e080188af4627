"""Collision checking on the scene's own MuJoCo model: the planners' validity checker."""

from __future__ import annotations

import copy

import mujoco
import numpy as np


class Checker:
    """Is the arm at `q` clear of the world by `margin`? Optionally carrying an object.

    `arm_qadr` (dof,) are the arm's qpos addresses; `robot_bodies` the bodies whose geoms are the robot;
    `allowed` holds geom ids whose contacts are ignored (e.g. the object being grasped). With several arms,
    `arm_qadr` holds all their joints, `robot_bodies` all their bodies and `arms` each arm's bodies: then the
    arms are also checked against each other.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        arm_qadr: np.ndarray,
        robot_bodies: np.ndarray,
        margin: float = 0.01,
        arms: list[np.ndarray] | None = None,
    ):
        self.model = copy.copy(model)
        robot_geom = np.isin(self.model.geom_bodyid, robot_bodies)
        self.model.geom_margin[robot_geom] = margin
        # In this copy only moving-vs-still pairs (and arm-vs-other-arm pairs) collide: contacts among the still
        # world (the object on the table) or within an arm are never generated, so most checks find no contact.
        self._solid = (self.model.geom_contype | self.model.geom_conaffinity) != 0
        self._arm = np.full(self.model.ngeom, -1)  # which arm a robot geom belongs to
        for k, bodies in enumerate(arms or [robot_bodies]):
            self._arm[np.isin(self.model.geom_bodyid, bodies)] = k
        self._collide_as(robot_geom)
        self.data = mujoco.MjData(self.model)
        self.arm_qadr = arm_qadr
        self.robot_geom = robot_geom
        self.checks = 0
        self._moving = robot_geom.copy()
        self._allowed = np.zeros(self.model.ngeom, bool)
        self._attached: tuple[int, np.ndarray, int] | None = None  # (qadr, pose in hand frame (4,4), hand body)

    def margin(self, value: float) -> None:
        """Clearance [m] the robot (and a carried object) must keep."""
        self.model.geom_margin[self._moving] = value

    def set_state(self, qpos: np.ndarray) -> None:
        """Start from a full qpos (objects where they are)."""
        self.data.qpos[:] = qpos

    def _with_parts(self, geoms) -> np.ndarray:
        """The geoms and, for any on a moving body (an object), every other geom of that body (a concave
        object's convex parts); geoms of the world body are taken one by one."""
        geoms = np.asarray(geoms, int)
        bodies = self.model.geom_bodyid[geoms]
        bodies = bodies[bodies > 0]
        return np.union1d(geoms, np.flatnonzero(np.isin(self.model.geom_bodyid, bodies))).astype(int)

    def allow(self, geoms: list[int]) -> None:
        self._allowed[:] = False
        self._allowed[self._with_parts(geoms)] = True

    def attach(self, obj_geom: int, obj_qadr: int, hand_body: int, q_grasp: np.ndarray) -> None:
        """Carry the object rigidly with the hand from its pose at `q_grasp`."""
        self.data.qpos[self.arm_qadr] = q_grasp
        mujoco.mj_kinematics(self.model, self.data)
        T_hand = _pose(self.data.xpos[hand_body], self.data.xmat[hand_body])
        p, quat = self.data.qpos[obj_qadr : obj_qadr + 3], self.data.qpos[obj_qadr + 3 : obj_qadr + 7]
        mat = np.empty(9)
        mujoco.mju_quat2Mat(mat, quat)
        self._attached = (obj_qadr, np.linalg.inv(T_hand) @ _pose(p, mat), hand_body)
        parts = self._with_parts([obj_geom])
        self._moving = self.robot_geom.copy()
        self._moving[parts] = True
        self._collide_as(self._moving)
        self.model.geom_margin[parts] = self.model.geom_margin[self.robot_geom].max()

    def detach(self) -> None:
        self._attached = None
        self._moving = self.robot_geom.copy()
        self._collide_as(self._moving)

    def _collide_as(self, moving: np.ndarray) -> None:
        """Still solid geoms: contype 1, conaffinity 0; a carried object: 0 and 1; arm k: contype 2 << k,
        conaffinity 1 plus the other arms' bits. A pair collides iff one side's contype meets the other's
        conaffinity, i.e. iff exactly one of them moves, or they are parts of two different arms."""
        m = self.model
        m.geom_contype[:] = np.where(self._solid & ~moving, 1, 0)
        m.geom_conaffinity[:] = np.where(self._solid & moving, 1, 0)
        n = self._arm.max() + 1
        for k in range(n):
            arm = self._solid & (self._arm == k)
            m.geom_contype[arm] = 2 << k
            m.geom_conaffinity[arm] = 1 | (sum(2 << j for j in range(n)) - (2 << k))

    def __call__(self, q: np.ndarray) -> bool:
        self.checks += 1
        m, d = self.model, self.data
        d.qpos[self.arm_qadr] = q
        if self._attached is not None:
            qadr, T_rel, hand = self._attached
            mujoco.mj_kinematics(m, d)
            T = _pose(d.xpos[hand], d.xmat[hand]) @ T_rel
            d.qpos[qadr : qadr + 3] = T[:3, 3]
            mujoco.mju_mat2Quat(d.qpos[qadr + 3 : qadr + 7], T[:3, :3].ravel())
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        if d.ncon == 0:
            return True
        g = d.contact.geom[: d.ncon]
        g1, g2 = g[:, 0], g[:, 1]
        bad = ~self._allowed[g1] & ~self._allowed[g2]  # only pairs that must keep clear collide (see _collide_as)
        return not bool(bad.any())

    def segment(self, q0: np.ndarray, q1: np.ndarray, step: float = 0.02) -> bool:
        """Is the straight joint-space segment clear, checked every `step` [rad] of the largest joint motion?"""
        n = max(2, int(np.ceil(np.abs(q1 - q0).max() / step)) + 1)
        return all(self(q0 + (q1 - q0) * s) for s in np.linspace(0.0, 1.0, n)[1:])


def _pose(pos: np.ndarray, xmat: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.asarray(xmat).reshape(3, 3)
    T[:3, 3] = pos
    return T
