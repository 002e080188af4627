"""Grasp candidates for a resting object: top-down first, then angled, each with a finger width.

A grasp is a TCP pose in the world: `pos` (3,) [m]; `rot` (3, 3) whose columns are the hand's
x, y (closing direction) and z (approach direction, pointing into the object).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.types import Obj

FINGER_TIP_BELOW_TCP = 0.009  # [m] fingertips reach this far past the TCP
TABLE_CLEARANCE = 0.006  # [m] keep the fingertips above the table


@dataclass(frozen=True)
class Grasp:
    pos: np.ndarray  # (3,) [m] world
    rot: np.ndarray  # (3, 3)
    width: float  # [m] object width across the fingers
    kind: str  # "top" | "angled"


def closing_yaw_and_width(obj: Obj) -> tuple[float, float]:
    """World yaw of the closing direction [rad] and the width the fingers close on [m]."""
    s = obj.size
    if obj.shape in ("cylinder", "sphere"):
        return 0.0, 2 * s[0]
    if obj.shape == "capsule":  # lying along its local x: close across it
        return obj.yaw + np.pi / 2, 2 * s[0]
    if obj.shape == "box":
        return (obj.yaw + np.pi / 2, 2 * s[1]) if s[1] <= s[0] else (obj.yaw, 2 * s[0])
    verts = np.asarray(obj.mesh, float)[:, :2]  # mesh: narrowest direction of the footprint
    angles = np.linspace(0, np.pi, 24, endpoint=False)
    dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
    widths = np.ptp(verts @ dirs.T, axis=0)
    k = int(np.argmin(widths))
    return obj.yaw + angles[k], float(widths[k])


def _frame(closing_yaw: float, tilt: float, radial: np.ndarray) -> np.ndarray:
    """Hand frame with y along the closing yaw, z tilted by `tilt` from straight down about y."""
    y = np.array([np.cos(closing_yaw), np.sin(closing_yaw), 0.0])
    z0 = np.array([0.0, 0.0, -1.0])
    x0 = np.cross(y, z0)
    if x0 @ np.append(radial, 0.0) < 0:  # keep the hand facing away from the robot: flip the closing sign
        y, x0 = -y, -x0
    z = np.cos(tilt) * z0 + np.sin(tilt) * x0  # tilt towards the hand's x (away from the base)
    x = np.cross(y, z)
    return np.stack([x, y, z], 1)


def candidates(obj: Obj, table_height: float, base_xy: np.ndarray, tilts=(0.0, -0.35, 0.35)) -> list[Grasp]:
    """Grasps in order of preference; the planner takes the first that IK and collisions accept."""
    yaw, width = closing_yaw_and_width(obj)
    centre = np.array([obj.xy[0], obj.xy[1], table_height + obj.half_height])
    radial = np.asarray(obj.xy) - base_xy
    radial = radial / (np.linalg.norm(radial) + 1e-9)
    out = []
    for tilt in tilts:
        rot = _frame(yaw, tilt, radial)
        pos = centre.copy()
        # fingertips must stay above the table: lower bound on the TCP height along the approach
        depth = FINGER_TIP_BELOW_TCP * abs(rot[2, 2]) + 0.011 * abs(np.sin(tilt))
        pos[2] = max(pos[2], table_height + depth + TABLE_CLEARANCE)
        out.append(Grasp(pos=pos, rot=rot, width=width, kind="top" if tilt == 0 else "angled"))
    return out
