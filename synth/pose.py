"""Poses about the vertical: where a robot base stands, and the one yaw rotation of a base or an object.

World frame: z up, the floor at z = 0 (synth/types.py). A robot base stands `base_pos` [m] from the usual base
anchor (0, 0, ROBOT_BASE_Z), turned by a yaw [rad] about z; a scene may move it by a base offset
(dx, dy [m], turn [rad], the `robot_base` randomizer).
"""

from __future__ import annotations

import numpy as np

ROBOT_BASE_Z = 0.75  # [m] the arm stands on a pedestal; the table's height varies around it


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation by `yaw` [rad] about z: the turned frame's axes in the world, as columns."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_quat(yaw: float) -> np.ndarray:
    """(4,) unit quaternion (w, x, y, z) of the rotation by `yaw` [rad] about z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def base_pose(
    base_pos: tuple[float, float, float], base_yaw: float = 0.0, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> tuple[np.ndarray, float]:
    """World position (3,) [m] and yaw [rad] of a robot base at `base_pos` [m] from the base anchor, turned by
    `base_yaw` [rad], moved by a scene's base `offset` (dx, dy [m], turn [rad])."""
    dx, dy, turn = offset
    return np.array([base_pos[0] + dx, base_pos[1] + dy, ROBOT_BASE_Z + base_pos[2]]), float(base_yaw + turn)
