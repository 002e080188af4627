"""Batched collision checking without MuJoCo: the robot as spheres, the world as boxes, cylinders and
rounded boxes, for the kinematic mode's straight joint-space segments.

Robot: every link capsule of synth/robot.py (radius from the embodiment), the palm and the two finger
pads, each covered by spheres along a segment (spacing s = r, radius inflated to sqrt(r^2 + (s/2)^2),
so the spheres contain the MuJoCo geom: a contact MuJoCo finds is always found here; the cover is at
most ~12% of a link's radius fatter, ~3.6 cm longer at the palm's ends and 1.25 cm past the fingertips).
World: the table top, the target's plate and walls (containers only, as in MuJoCo), the objects as
their exact primitive (a mesh as its bounding box) and the floor. Shapes: W worlds, O obstacles,
S spheres; lengths [m], angles [rad].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.embodiment import Embodiment
from synth.kinematics import Chain, _row
from synth.types import Obj, Scene

FLOOR, TABLE, TARGET, PAD = -1, 0, 1, -2
OBJECT = 2  # role of objects[i] is OBJECT + i
PALM_HALF, PALM_Z = (0.025, 0.095, 0.026), 0.03  # synth/robot.py's palm box [m] in the hand frame
PAD_HALF_XY, PAD_Y = (0.011, 0.006), 0.006  # finger pad half extents and offset [m]


def _cover(p0: np.ndarray, p1: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Sphere centres (K, 3) and radii (K,) containing the capsule p0-p1 of radius r."""
    if np.linalg.norm(p1 - p0) < 1e-9:
        return p0[None], np.array([r])
    n = int(np.ceil(np.linalg.norm(p1 - p0) / r))
    t = np.linspace(0.0, 1.0, n + 1)
    s = np.linalg.norm(p1 - p0) / n
    return p0 + t[:, None] * (p1 - p0), np.full(n + 1, np.hypot(r, s / 2))


@dataclass(frozen=True)
class Body:
    """The robot's spheres: link (S,) index into Chain.frames (-1 the base, dof the hand), centre (S, 3)
    in that frame, radius (S,), finger (S,) +1/-1 for the left/right pad (slides by half the width along
    the hand's y), 0 otherwise."""

    link: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    finger: np.ndarray

    @staticmethod
    def of(emb: Embodiment) -> Body:
        rows = [_row(j.a, j.alpha, j.d, j.theta)[:3, 3] for j in emb.joints] + [_row(*emb.flange)[:3, 3]]
        parts = [(-1, np.zeros(3), rows[0], emb.joints[0].radius, 0)]
        parts += [(i, np.zeros(3), rows[i + 1], j.radius, 0) for i, j in enumerate(emb.joints)]
        gr = emb.gripper
        hx, hy, hz = PALM_HALF
        r = float(np.hypot(hx, hz))
        parts.append((emb.dof, np.array([0, -hy, PALM_Z]), np.array([0, hy, PALM_Z]), r, 0))
        for sign in (1, -1):
            y = sign * PAD_Y
            z0 = gr.finger_offset
            parts.append(
                (emb.dof, np.array([0, y, z0]), np.array([0, y, z0 + gr.finger_length]), np.hypot(*PAD_HALF_XY), sign)
            )
        link, centre, radius, finger = [], [], [], []
        for k, p0, p1, rad, f in parts:
            c, rr = _cover(np.asarray(p0, float), np.asarray(p1, float), float(rad))
            link += [k] * len(c)
            centre.append(c)
            radius.append(rr)
            finger += [f] * len(c)
        return Body(np.array(link), np.concatenate(centre), np.concatenate(radius), np.array(finger, float))

    def centres(self, ch: Chain, base: np.ndarray, width: np.ndarray | float) -> np.ndarray:
        """(W, S, 3) sphere centres in the world for link frames `ch`, the base pose (4, 4) and the
        gripper opening width (W,) or scalar [m]."""
        W = len(ch.tcp)
        frames = np.concatenate([np.broadcast_to(base, (W, 1, 4, 4)), ch.frames, ch.hand[:, None]], axis=1)
        T = frames[:, self.link + 1]  # (W, S, 4, 4)
        local = np.broadcast_to(self.centre, (W, *self.centre.shape)).copy()
        local[:, :, 1] += self.finger * np.broadcast_to(np.asarray(width, float), (W,))[:, None] / 2
        return np.einsum("wsij,wsj->wsi", T[:, :, :3, :3], local) + T[:, :, :3, 3]


@dataclass
class Obstacles:
    """Still geometry per world: centre (W, O, 3), cos/sin of the yaw (W, O), half (W, O, 3) box half
    extents [m] (a cylinder: radius, radius, half height), rounding (W, O) [m] added around the box,
    cylinder (W, O) bool, role (W, O) int (TABLE, TARGET, OBJECT + i, FLOOR; PAD fills unused rows)."""

    centre: np.ndarray
    cos: np.ndarray
    sin: np.ndarray
    half: np.ndarray
    rounding: np.ndarray
    cylinder: np.ndarray
    role: np.ndarray


def primitive(obj: Obj) -> tuple[tuple[float, float, float], float, bool]:
    """(box half extents, rounding, is a cylinder) of an object in its own (yawed) frame."""
    s = obj.size
    if obj.shape == "sphere":
        return (0.0, 0.0, 0.0), s[0], False
    if obj.shape == "capsule":  # lying along its local x
        return (s[1], 0.0, 0.0), s[0], False
    if obj.shape == "cylinder":
        return (s[0], s[0], s[1]), 0.0, True
    return (s[0], s[1], s[2]), 0.0, False  # box, or a mesh's bounding box


def scene_rows(scene: Scene) -> list[tuple]:
    """(centre, yaw, half, rounding, cylinder, role) of every still geometry of one scene."""
    t, tg, h = scene.table, scene.target, scene.table.height
    rows = [
        ((0.0, 0.0, -1.0), 0.0, (10.0, 10.0, 1.0), 0.0, False, FLOOR),
        ((t.centre[0], t.centre[1], h - 0.02), 0.0, (t.size[0], t.size[1], 0.02), 0.0, False, TABLE),
    ]
    if tg.walled:  # synth/scenes/tabletop.py's tray: base plate and four walls collide; a region does not
        w, base_h, (hx, hy) = 0.006, 0.006, tg.size
        rows.append(((tg.pos[0], tg.pos[1], h + base_h / 2), 0.0, (hx + w, hy + w, base_h / 2), 0.0, False, TARGET))
        for dx, dy, sx, sy in (
            (hx + w / 2, 0, w / 2, hy + w),
            (-hx - w / 2, 0, w / 2, hy + w),
            (0, hy + w / 2, hx, w / 2),
            (0, -hy - w / 2, hx, w / 2),
        ):
            z = h + base_h + tg.wall / 2
            rows.append(((tg.pos[0] + dx, tg.pos[1] + dy, z), 0.0, (sx, sy, tg.wall / 2), 0.0, False, TARGET))
    for i, o in enumerate(scene.objects):
        if o.active:
            half, rnd, cyl = primitive(o)
            rows.append(((o.xy[0], o.xy[1], h + o.half_height), o.yaw, half, rnd, cyl, OBJECT + i))
    return rows


def obstacles(scenes: list[Scene]) -> Obstacles:
    """The still world of each scene, padded to a common O with far-away rows."""
    per = [scene_rows(s) for s in scenes]
    O = max(len(r) for r in per)
    pad = ((100.0, 100.0, 100.0), 0.0, (0.0, 0.0, 0.0), 0.0, False, PAD)
    rows = [r + [pad] * (O - len(r)) for r in per]
    col = list(zip(*[list(zip(*r)) for r in rows], strict=True))  # per field: W tuples of O values
    yaw = np.array(col[1], float)
    return Obstacles(
        centre=np.array(col[0], float),
        cos=np.cos(yaw),
        sin=np.sin(yaw),
        half=np.array(col[2], float),
        rounding=np.array(col[3], float),
        cylinder=np.array(col[4], bool),
        role=np.array(col[5], int),
    )


def distance(points: np.ndarray, obs: Obstacles) -> np.ndarray:
    """(W, N, O) signed distance [m] from points (W, N, 3) to each obstacle's surface (negative inside)."""
    d = points[:, :, None, :] - obs.centre[:, None]  # (W, N, O, 3)
    c, s = obs.cos[:, None], obs.sin[:, None]
    x = np.abs(c * d[..., 0] + s * d[..., 1])
    y = np.abs(-s * d[..., 0] + c * d[..., 1])
    z = np.abs(d[..., 2])
    h = obs.half[:, None]
    radial = np.where(obs.cylinder[:, None], np.hypot(x, y) - h[..., 0], x - h[..., 0])
    qy = np.where(obs.cylinder[:, None], -np.inf, y - h[..., 1])
    qz = z - h[..., 2]
    out = np.sqrt(np.maximum(radial, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(np.maximum(radial, qy), qz), 0.0)
    return out + inside - obs.rounding[:, None]


def clearance(
    centres: np.ndarray, radius: np.ndarray, obs: Obstacles, allowed: np.ndarray, chunk: int = 64
) -> np.ndarray:
    """(W,) smallest clearance [m] between spheres (W, N, 3) of radii (N,) or (W, N) and the obstacles
    not `allowed` ((W, O) bool); +inf where everything is allowed. Done `chunk` spheres at a time."""
    W, N = centres.shape[:2]
    rad = np.broadcast_to(radius, (W, N))
    best = np.full(W, np.inf)
    for k in range(0, N, chunk):
        d = distance(centres[:, k : k + chunk], obs) - rad[:, k : k + chunk, None]
        d = np.where(allowed[:, None, :], np.inf, d)
        best = np.minimum(best, d.min(axis=(1, 2)))
    return best


def object_spheres(obj: Obj, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """k sphere centres (k, 3) in the object's frame and radii (k,) that contain the object (a mesh: its
    bounding box), for carrying it with the hand."""
    half, rnd, cyl = primitive(obj)
    h = np.asarray(half)
    if cyl:  # upright: along z, radius the cylinder's
        axis, r = 2, h[0]
    elif rnd > 0:  # sphere or capsule: along x, the rounding is the radius
        axis, r = 0, rnd
    else:  # box: along its longest side; the other two span the radius
        axis = int(np.argmax(h))
        r = float(np.linalg.norm(np.delete(h, axis)))
    p = np.zeros((2, 3))
    p[0, axis], p[1, axis] = -h[axis], h[axis]
    t = np.linspace(0.0, 1.0, k)
    s = 2 * h[axis] / (k - 1)
    return p[0] + t[:, None] * (p[1] - p[0]), np.full(k, np.hypot(r, s / 2))
