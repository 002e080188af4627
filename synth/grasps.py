"""Grasp candidates for a resting object: top-down first, then angled, each with a finger width.

A grasp is a TCP pose in the world: `pos` (3,) [m]; `rot` (3, 3) whose columns are the hand's
x, y (closing direction) and z (approach direction, pointing into the object).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from synth.types import Obj

if TYPE_CHECKING:
    from synth.embodiment import Gripper

FINGER_TIP_BELOW_TCP = 0.009  # [m] fingertips reach this far past the TCP
TABLE_CLEARANCE = 0.006  # [m] keep the fingertips above the table


@dataclass(frozen=True)
class Grasp:
    pos: np.ndarray  # (3,) [m] world
    rot: np.ndarray  # (3, 3)
    width: float  # [m] object width across the fingers
    kind: str  # "top" | "angled"


def closing_options(obj: Obj, max_width: float) -> list[tuple[float, float]]:
    """(world yaw of the closing direction [rad], width the fingers close on [m]), best first.

    Round objects can be taken from any side, boxes across either side that fits, meshes across their
    narrowest directions; a capsule lying down only across its axis.
    """
    s = obj.size
    if obj.shape in ("cylinder", "sphere"):
        return [(a, 2 * s[0]) for a in (0.0, np.pi / 4, -np.pi / 4, np.pi / 2)]
    if obj.shape == "capsule":
        return [(obj.yaw + np.pi / 2, 2 * s[0])]
    if obj.shape == "box":
        opts = sorted([(obj.yaw + np.pi / 2, 2 * s[1]), (obj.yaw, 2 * s[0])], key=lambda o: o[1])
        return [o for o in opts if o[1] <= max_width] or opts[:1]
    verts = np.asarray(obj.mesh, float)[:, :2]  # mesh: narrow directions of the footprint
    angles = np.linspace(0, np.pi, 24, endpoint=False)
    dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
    widths = np.ptp(verts @ dirs.T, axis=0)
    order = np.argsort(widths)
    picks = [order[0]] + [k for k in order[1:] if abs(angles[k] - angles[order[0]]) % np.pi > np.pi / 6][:1]
    return [(obj.yaw + float(angles[k]), float(widths[k])) for k in picks if widths[k] <= max_width] or [
        (obj.yaw + float(angles[order[0]]), float(widths[order[0]]))
    ]


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


def reach(gripper: Gripper) -> tuple[float, float]:
    """(max_depth, max_width) [m] of a gripper, as candidates takes them: how far below an object's top the TCP
    may go before the palm touches it (8 mm to spare), and the widest object the open fingers pass around (12 mm)."""
    return gripper.tcp_offset - gripper.finger_offset - 0.008, gripper.stroke - 0.012


def tcp_height(table_height, half_height, max_depth: float, below: float = 0.0, tilt: float = 0.0):
    """TCP height [m] of a grasp whose approach is tilted `tilt` [rad] from straight down: `below` [m] under the
    object's centre, but no deeper than max_depth [m] under its top (the palm) and with the fingertips at least
    TABLE_CLEARANCE above the table. table_height, half_height [m]: floats or arrays of one shape."""
    c = np.cos(tilt)
    depth = FINGER_TIP_BELOW_TCP * c + 0.011 * abs(np.sin(tilt))
    top = table_height + 2 * half_height
    return np.maximum(
        np.maximum(table_height + half_height - below, top - max_depth * c), table_height + depth + TABLE_CLEARANCE
    )


def candidates(
    obj: Obj,
    table_height: float,
    base_xy: np.ndarray,
    max_depth: float,
    max_width: float,
    tilts=(0.0, -0.35, 0.35),
    below: float = 0.0,
) -> list[Grasp]:
    """Grasps in order of preference (top-down for every closing direction, then angled ones);
    the planner takes the first that IK and collision checks accept.

    max_depth [m]: how far below the object's top the TCP may go before the palm would touch it;
    max_width [m]: the widest object the open fingers pass around;
    below [m]: aim the TCP this far below the object's centre, as far as the palm and the table allow (a deeper
    grasp leaves more of the object between the fingers when a close comes high).
    """
    options = closing_options(obj, max_width)
    centre = np.array([obj.xy[0], obj.xy[1], table_height + obj.half_height])
    radial = np.asarray(obj.xy) - base_xy
    radial = radial / (np.linalg.norm(radial) + 1e-9)
    out = []
    for tilt, (yaw, width) in ((t, o) for t in tilts for o in options):
        rot = _frame(yaw, tilt, radial)
        pos = centre.copy()
        pos[2] = tcp_height(table_height, obj.half_height, max_depth, below, tilt)
        out.append(Grasp(pos=pos, rot=rot, width=width, kind="top" if tilt == 0 else "angled"))
    return out
