"""A cabinet with one sliding drawer, built procedurally into a tabletop model.

The cabinet is five static walls open at the front (its local -x); the drawer is a child body on a slide
joint named "drawer" (0 = closed, `travel` = fully out) with a front panel, a floor, walls and a bar handle
on two posts near the top of its front.
"""

from __future__ import annotations

import functools

import mujoco
import numpy as np

from synth.pose import yaw_quat
from synth.robot import WORLD_CONTYPE
from synth.types import Drawer

WALL = 0.01  # [m] thickness of the cabinet's walls and the drawer's panels
BAR = 0.006  # [m] half thickness of the handle bar
GAP = 0.003  # [m] between the drawer and the cabinet's walls
FRONT = WALL + 0.001  # [m] the drawer's front panel stands this far out of the closed cabinet


def handle_height(dr: Drawer) -> float:
    """Height of the bar's centre above the table [m]: near the top of the front, so that a hand
    coming down onto it stays above the cabinet."""
    return 2 * dr.size[2] - WALL - BAR - 0.008


def handle_xy(dr: Drawer, opening: float) -> np.ndarray:
    """(2,) world x, y [m] of the bar's centre with the drawer `opening` [m] out."""
    u = np.asarray(dr.out)
    return np.asarray(dr.pos) + u * (dr.size[0] + FRONT + dr.standoff + opening)


@functools.lru_cache(maxsize=4096)  # a scene's drawer is built, planned around and followed: computed once
def boxes(dr: Drawer) -> list[tuple[str, str, tuple, tuple, tuple[float, ...]]]:
    """The cabinet's and the drawer's boxes in build order: (body "cabinet" | "drawer", geom name, centre (3,) [m]
    in the cabinet's frame (the drawer's: closed), half extents (3,) [m], rgba)."""
    hx, hy, hz = dr.size
    w = WALL / 2
    walls = {
        "top": ((0, 0, hz - w), (hx, hy, w)),
        "bottom": ((0, 0, -hz + w), (hx, hy, w)),
        "left": ((0, hy - w, 0), (hx, w, hz)),
        "right": ((0, -hy + w, 0), (hx, w, hz)),
        "back": ((hx - w, 0, 0), (w, hy, hz)),
    }
    out: list[tuple[str, str, tuple, tuple, tuple[float, ...]]] = [
        ("cabinet", f"cabinet_{name}", pos, size, dr.rgba) for name, (pos, size) in walls.items()
    ]
    # the drawer's box runs from behind its front panel to just short of the cabinet's back wall
    back, front = hx - WALL - GAP, -hx - FRONT + WALL
    cx, ix, iy, iz = (back + front) / 2, (back - front) / 2, hy - WALL - GAP, hz - WALL - GAP
    shade: tuple[float, ...] = tuple(0.8 * c for c in dr.rgba[:3]) + (1.0,)
    parts = {
        "front": ((-hx - FRONT + w, 0, 0), (w, hy, hz - GAP)),  # in front of the cabinet, clear of the table
        "floor": ((cx, 0, -iz + w), (ix, iy, w)),
        "left": ((cx, iy - w, 0), (ix, w, iz)),
        "right": ((cx, -iy + w, 0), (ix, w, iz)),
        "back": ((back - w, 0, 0), (w, iy, iz)),
    }
    out += [
        ("drawer", f"drawer_{n}", pos, size, dr.rgba if n == "front" else shade) for n, (pos, size) in parts.items()
    ]
    z = handle_height(dr) - hz
    dark = (0.15, 0.15, 0.17, 1)
    out.append(("drawer", "drawer_handle", (-FRONT - hx - dr.standoff, 0, z), (BAR, dr.handle, BAR), dark))
    for side, y in (("l", dr.handle - 0.006), ("r", -dr.handle + 0.006)):
        out.append(
            (
                "drawer",
                f"drawer_post_{side}",
                (-FRONT - hx - dr.standoff / 2, y, z),
                (dr.standoff / 2, 0.005, 0.005),
                dark,
            )
        )
    return out


def drawer_inertial(drawers: list[Drawer]) -> tuple[np.ndarray, np.ndarray]:
    """Each drawer body's inertial frame as MuJoCo computes it from its boxes (equal masses, see _box): its centre of
    mass (D, 3) [m] in the cabinet's frame with the drawer closed, and its principal axes R (D, 3, 3) (columns:
    largest moment first; MuJoCo's signs: the first axis up, the second along the cabinet's -y, right-handed)."""
    parts = [[(pos, half) for body, _, pos, half, _ in boxes(dr) if body == "drawer"] for dr in drawers]
    c = np.array([[p for p, _ in ps] for ps in parts], float).reshape(len(drawers), -1, 3)  # (D, B, 3)
    h = np.array([[q for _, q in ps] for ps in parts], float).reshape(c.shape)
    com = c.mean(1)
    d = c - com[:, None]  # each box about its own centre, moved to the centre of mass (parallel axes)
    own = (h[..., [1, 0, 0]] ** 2 + h[..., [2, 2, 1]] ** 2) / 3
    eye = np.eye(3)
    inertia = (own[..., None] * eye + (d * d).sum(2)[..., None, None] * eye - d[..., :, None] * d[..., None, :]).sum(1)
    R = np.linalg.eigh(inertia)[1][..., ::-1].copy()
    R[..., 0] *= np.sign(R[:, 2, 0])[:, None]
    R[..., 1] *= -np.sign(R[:, 1, 1])[:, None]
    R[..., 2] = np.cross(R[..., 0], R[..., 1])
    return com, R


def add_drawer(spec: mujoco.MjSpec, dr: Drawer, table_height: float) -> None:
    """Cabinet (static) and drawer (slide joint "drawer", geoms named drawer_*) on the table."""
    hx, hy, hz = dr.size
    cab = spec.worldbody.add_body(name="cabinet", pos=[dr.pos[0], dr.pos[1], table_height + hz])
    cab.quat = yaw_quat(dr.yaw)
    parts = boxes(dr)
    for _, name, pos, size, rgba in parts[:5]:
        _box(cab, name, pos, size, rgba)
    spec.add_numeric(name="drawer_opening", data=[dr.opening])  # its start position (see initial_qpos)
    spec.add_exclude(bodyname1="cabinet", bodyname2="drawer")  # the slide's limits keep it in its cabinet
    drawer = cab.add_body(name="drawer")
    j = drawer.add_joint(name="drawer", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[-1, 0, 0])
    j.range, j.limited = [0, dr.travel], True
    j.damping, j.frictionloss, j.armature = [dr.damping, 0, 0], dr.friction, 0.05
    for _, name, pos, size, rgba in parts[5:]:
        _box(drawer, name, pos, size, rgba)
    z = handle_height(dr) - hz
    drawer.add_site(name="drawer_handle", pos=[-FRONT - hx - dr.standoff, 0, z], size=[0.004, 0, 0], rgba=[0, 0, 0, 0])


def _box(body: mujoco.MjsBody, name: str, pos, size, rgba) -> None:
    g = body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(pos), size=list(size), rgba=list(rgba))
    g.contype = g.conaffinity = WORLD_CONTYPE
    g.mass, g.friction = 0.1, [1.0, 0.005, 0.0001]


def drawer_geoms(model: mujoco.MjModel) -> list[int]:
    """Geoms of the sliding drawer (its panels, posts and handle)."""
    return [g for g in range(model.ngeom) if (model.geom(g).name or "").startswith("drawer_")]
