"""Action conventions: the joint targets the physics executed, written the way a policy would command them.

The physics always runs joint position targets; `action=` only chooses how the dataset's `action` column
expresses them (the executed targets are kept beside it as `synth.joint_target` whenever they differ):

- joint_pos:   (T, dof+1) absolute joint targets [rad], gripper width [m];
- joint_delta: (T, dof+1) joint target minus the measured joint position at that frame [rad], gripper width [m];
- ee_pose:     (T, 8) the target TCP pose reached by forward kinematics of the joint targets, in the robot base
               frame: position [m], quaternion (w, x, y, z), gripper width [m];
- ee_delta:    (T, 7) target TCP position minus the measured one [m] (base frame), the rotation from the measured
               to the target TCP orientation as a rotation vector in the base frame [rad], gripper width [m].
"""

from __future__ import annotations

import mujoco
import numpy as np

from synth.pose import yaw_matrix, yaw_quat

CONVENTIONS = ("joint_pos", "joint_delta", "ee_pose", "ee_delta")
MEANING = {
    "joint_pos": "absolute joint position targets",
    "joint_delta": "joint position targets minus the measured joint positions at the same frame",
    "ee_pose": "absolute TCP pose targets in the robot base frame (forward kinematics of the joint targets), "
    "position then quaternion w x y z",
    "ee_delta": "TCP pose targets relative to the measured TCP pose: position difference in the base frame, "
    "then the rotation from measured to target as a base-frame rotation vector",
}


def names(convention: str, joints: list[str]) -> list[str]:
    """Action names; `joints` are the arm's joint names (the gripper comes last)."""
    if convention in ("joint_pos", "joint_delta"):
        return [*joints, "gripper"]
    if convention == "ee_pose":
        return ["x", "y", "z", "qw", "qx", "qy", "qz", "gripper"]
    return ["dx", "dy", "dz", "rx", "ry", "rz", "gripper"]


def units(convention: str, dof: int) -> list[str]:
    if convention in ("joint_pos", "joint_delta"):
        return ["rad"] * dof + ["m"]
    if convention == "ee_pose":
        return ["m"] * 3 + ["1"] * 4 + ["m"]
    return ["m"] * 3 + ["rad"] * 3 + ["m"]


def in_base(pos: np.ndarray, quat: np.ndarray, base: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """(T, 7) world poses (positions (T, 3) [m], quaternions (T, 4) w x y z) in a base frame at `base` (3,) [m]
    turned by `yaw` [rad] about z."""
    pos = pos - base
    if not yaw:
        return np.c_[pos, quat]
    c, s = yaw_matrix(yaw)[:2, 0]  # cos, sin of the base's yaw
    pos = np.c_[c * pos[:, 0] + s * pos[:, 1], -s * pos[:, 0] + c * pos[:, 1], pos[:, 2]]
    inv = yaw_quat(-yaw)
    out = np.empty_like(quat)
    for t in range(len(quat)):
        mujoco.mju_mulQuat(out[t], inv, quat[t])
    return np.c_[pos, out]


def tcp_poses(
    model: mujoco.MjModel, arm_qadr: np.ndarray, q: np.ndarray, base: np.ndarray, site: str = "tcp", yaw: float = 0.0
) -> np.ndarray:
    """(T, 7) pose [m; quaternion w x y z] of `site` in the base frame (at `base` (3,) [m], turned by `yaw` [rad])
    at joint positions q (T, dof), by kinematics only."""
    d = mujoco.MjData(model)
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
    out = np.empty((len(q), 7))
    for t, qt in enumerate(q):
        d.qpos[arm_qadr] = qt
        mujoco.mj_kinematics(model, d)
        out[t, :3] = d.site_xpos[sid]
        mujoco.mju_mat2Quat(out[t, 3:], d.site_xmat[sid])
    return in_base(out[:, :3], out[:, 3:], base, yaw)


def rotvec(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """(T, 3) rotation vectors [rad] of q_to * q_from^-1 (quaternions w x y z, (T, 4) each), base frame."""
    out = np.empty((len(q_from), 3))
    inv, rel = np.empty(4), np.empty(4)
    for t in range(len(q_from)):
        mujoco.mju_negQuat(inv, q_from[t])
        mujoco.mju_mulQuat(rel, q_to[t], inv)
        mujoco.mju_quat2Vel(out[t], rel, 1.0)
    return out


def convert(convention: str, target: np.ndarray, state: np.ndarray, ee_target: np.ndarray, ee_state: np.ndarray):
    """The written action (T, A) float32 from joint targets and measured joints (T, dof+1), and the target and
    measured TCP poses (T, 7)."""
    grip = target[:, -1:]
    if convention == "joint_pos":
        out = target
    elif convention == "joint_delta":
        out = np.c_[target[:, :-1] - state[:, :-1], grip]
    elif convention == "ee_pose":
        quat = ee_target[:, 3:] * np.sign(ee_target[:, 3:4] + 1e-12)  # w >= 0: one of the two equal quaternions
        out = np.c_[ee_target[:, :3], quat, grip]
    elif convention == "ee_delta":
        out = np.c_[ee_target[:, :3] - ee_state[:, :3], rotvec(ee_state[:, 3:], ee_target[:, 3:]), grip]
    else:
        raise ValueError(f"action={convention!r}; choose from {list(CONVENTIONS)}")
    return np.asarray(out, np.float32)
