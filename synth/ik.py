"""Inverse kinematics with mink on the robot-only model (objects' free joints are no IK variables)."""

from __future__ import annotations

import mink
import numpy as np

from synth.embodiment import Embodiment
from synth.robot import robot_only


class IK:
    """Differential IK iterated to convergence: a pose target for the `tcp` site, joint limits enforced.

    Poses are in the robot base frame: position (3,) [m], rotation (3, 3).
    """

    def __init__(self, emb: Embodiment, max_iters: int = 60, tol_pos: float = 5e-4, tol_rot: float = 5e-3):
        self.emb = emb
        self.model = robot_only(emb)
        self.cfg = mink.Configuration(self.model)
        self.task = mink.FrameTask("tcp", "site", position_cost=1.0, orientation_cost=0.5, lm_damping=1e-3)
        self.posture = mink.PostureTask(self.model, cost=1e-3)
        q_home = self.full(np.array(emb.home))
        self.posture.set_target(q_home)
        self.limits = [mink.ConfigurationLimit(self.model, gain=0.5)]
        self.max_iters, self.tol_pos, self.tol_rot = max_iters, tol_pos, tol_rot
        self.iterations = 0  # total iterations, for planner statistics

    def full(self, q_arm: np.ndarray) -> np.ndarray:
        q = np.zeros(self.model.nq)
        q[: self.emb.dof] = q_arm
        return q

    def solve(self, pos: np.ndarray, rot: np.ndarray, q_init: np.ndarray, max_step: float = 0.6) -> np.ndarray | None:
        """Joint angles (dof,) [rad] reaching the pose, or None if it does not converge within limits."""
        self.cfg.update(self.full(q_init))
        self.task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(rot), pos))
        for _ in range(self.max_iters):
            self.iterations += 1
            err = self.task.compute_error(self.cfg)
            if np.linalg.norm(err[:3]) < self.tol_pos and np.linalg.norm(err[3:]) < self.tol_rot:
                return self.cfg.q[: self.emb.dof].copy()
            try:
                v = mink.solve_ik(self.cfg, [self.task, self.posture], 1.0, "daqp", limits=self.limits, damping=1e-4)
            except mink.exceptions.NoSolutionFound:
                return None
            step = float(np.abs(v).max())
            self.cfg.integrate_inplace(v, min(1.0, max_step / step) if step > 0 else 1.0)
        return None

    def fk(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) [m] and rotation (3, 3) in the base frame."""
        self.cfg.update(self.full(q_arm))
        T = self.cfg.get_transform_frame_to_world("tcp", "site")
        return T.translation(), T.rotation().as_matrix()
