"""Batched collision checking without MuJoCo: the robot as spheres, the world as boxes, cylinders and
rounded boxes, for the kinematic mode's straight joint-space segments.

Robot: every link capsule of synth/robot.py (radius from the embodiment), the palm and the two finger
pads, each covered by spheres along a segment (spacing s = r, radius inflated to sqrt(r^2 + (s/2)^2),
so the spheres contain the MuJoCo geom: a contact MuJoCo finds is always found here; the cover is at
most ~12% of a link's radius fatter, ~3.6 cm longer at the palm's ends and 1.25 cm past the fingertips).
World: the table top, the target's plate and walls (containers only, as in MuJoCo), the objects as
their exact primitive (a mesh as its bounding box), a cabinet's walls and its drawer's boxes (at the drawer's
start opening) and the floor. Shapes: W worlds, O obstacles,
S spheres; lengths [m], angles [rad].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.arm_kinematics import Chain, _row
from synth.embodiment import Embodiment
from synth.tabletop import cabinet
from synth.types import Drawer, Obj, Scene

FLOOR, TABLE, TARGET, PAD = -1, 0, 1, -2
CABINET, DRAWER = -3, -4  # a cabinet's walls; its sliding drawer's boxes (synth/tabletop/cabinet.py)
OBJECT = 2  # role of objects[i] is OBJECT + i
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
    the hand's y), 0 otherwise. The spheres of one part (a link, the palm, a pad) form a group: members
    (G, K) sphere indices (the last repeated to fill K), and a bounding sphere per group: link (G,),
    centre (G, 3), radius (G,), finger (G,)."""

    link: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    finger: np.ndarray
    members: np.ndarray
    g_link: np.ndarray
    g_centre: np.ndarray
    g_radius: np.ndarray
    g_finger: np.ndarray

    @staticmethod
    def of(emb: Embodiment) -> Body:
        rows = [_row(j.a, j.alpha, j.d, j.theta)[:3, 3] for j in emb.joints] + [_row(*emb.flange)[:3, 3]]
        # the base's own link never moves (MuJoCo makes no contacts between static bodies): not checked
        parts = [(i, np.zeros(3), rows[i + 1], j.radius, 0) for i, j in enumerate(emb.joints)]
        gr = emb.gripper
        hx, hy, hz = gr.palm  # synth/robot.py's palm box in the hand frame, its centre 4 mm + hz up
        r, z = float(np.hypot(hx, hz)), 0.004 + hz
        parts.append((emb.dof, np.array([0, -hy, z]), np.array([0, hy, z]), r, 0))
        for sign in (1, -1):
            y = sign * PAD_Y
            z0 = gr.finger_offset
            parts.append(
                (emb.dof, np.array([0, y, z0]), np.array([0, y, z0 + gr.finger_length]), np.hypot(*PAD_HALF_XY), sign)
            )
        link: list[int] = []
        centre, radius, finger, members, groups = [], [], [], [], []
        for k, p0, p1, rad, f in parts:
            c, rr = _cover(np.asarray(p0, float), np.asarray(p1, float), float(rad))
            members.append(list(range(len(link), len(link) + len(c))))
            mid = (np.asarray(p0, float) + np.asarray(p1, float)) / 2
            groups.append((k, mid, float(np.max(np.linalg.norm(c - mid, axis=1) + rr)), f))
            link += [k] * len(c)
            centre.append(c)
            radius.append(rr)
            finger += [f] * len(c)
        K = max(len(m) for m in members)
        return Body(
            np.array(link),
            np.concatenate(centre),
            np.concatenate(radius),
            np.array(finger, float),
            np.array([m + [m[-1]] * (K - len(m)) for m in members]),
            np.array([g[0] for g in groups]),
            np.array([g[1] for g in groups]),
            np.array([g[2] for g in groups]),
            np.array([g[3] for g in groups], float),
        )

    def centres(self, ch: Chain, base: np.ndarray, width: np.ndarray | float) -> np.ndarray:
        """(W, S, 3) sphere centres in the world for link frames `ch`, the base pose (4, 4) and the
        gripper opening width (W,) or scalar [m]."""
        return _place(_frames(ch, base), self.link, self.centre, self.finger, width)


def _frames(ch: Chain, base: np.ndarray) -> np.ndarray:
    """(W, dof + 2, 3, 4) poses: the base (base: its (4, 4) pose), the links, the hand."""
    W = len(ch.tcp)
    return np.concatenate([np.broadcast_to(base[:3], (W, 1, 3, 4)), ch.frames, ch.hand[:, None]], axis=1)


def _place(frames: np.ndarray, link: np.ndarray, centre: np.ndarray, finger: np.ndarray, width) -> np.ndarray:
    """(W, S, 3) world positions of points `centre` (S, 3) fixed in frames[:, link + 1], the pads' moved
    by half the opening `width` (W,) or scalar [m] along the hand's y."""
    W = len(frames)
    T = frames[:, link + 1]
    local = np.broadcast_to(centre, (W, *centre.shape)).copy()
    local[:, :, 1] += finger * np.broadcast_to(np.asarray(width, float), (W,))[:, None] / 2
    return np.einsum("wsij,wsj->wsi", T[:, :, :3, :3], local) + T[:, :, :3, 3]


@dataclass
class Obstacles:
    """Still geometry per world: centre (W, O, 3), cos/sin of the yaw (W, O), half (W, O, 3) box half
    extents [m] (a cylinder: radius, radius, half height), rounding (W, O) [m] added around the box,
    cylinder (W, O) bool, role (W, O) int (TABLE, TARGET, OBJECT + i, CABINET, DRAWER, FLOOR; PAD fills unused
    rows)."""

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
    if tg.walled:  # synth/tabletop/compiler.py's tray: base plate and four walls collide; a region does not
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
    if scene.drawer is not None:
        rows += cabinet_rows(scene.drawer, h)
    return rows


def cabinet_rows(dr: Drawer, table_height: float) -> list[tuple]:
    """scene_rows' rows of a cabinet standing on the table, its drawer `dr.opening` [m] out."""
    c, s = np.cos(dr.yaw), np.sin(dr.yaw)
    origin = np.array([dr.pos[0], dr.pos[1], table_height + dr.size[2]])
    rows = []
    for body, _, pos, half, _ in cabinet.boxes(dr):
        x = pos[0] - (dr.opening if body == "drawer" else 0.0)  # the slide moves the drawer along the cabinet's -x
        centre = origin + np.array([c * x - s * pos[1], s * x + c * pos[1], pos[2]])
        rows.append((tuple(centre), dr.yaw, tuple(half), 0.0, False, DRAWER if body == "drawer" else CABINET))
    return rows


def obstacles(scenes: list[Scene]) -> Obstacles:
    """The still world of each scene, padded to a common O with far-away rows."""
    per = [scene_rows(s) for s in scenes]
    O = max(len(r) for r in per)
    pad = ((100.0, 100.0, 100.0), 0.0, (0.0, 0.0, 0.0), 0.0, False, PAD)
    rows = [r + [pad] * (O - len(r)) for r in per]
    col = list(zip(*[list(zip(*r, strict=True)) for r in rows], strict=True))  # per field: W tuples of O values
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


def sdf(p: np.ndarray, centre, cos, sin, half, rounding, cylinder) -> np.ndarray:
    """Signed distance [m] of points p (..., 3) to obstacles given by broadcastable fields (see Obstacles;
    centre and half (..., 3), the rest (...)); negative inside."""
    d = p - centre
    x = np.abs(cos * d[..., 0] + sin * d[..., 1])
    y = np.abs(-sin * d[..., 0] + cos * d[..., 1])
    z = np.abs(d[..., 2])
    radial = np.where(cylinder, np.hypot(x, y) - half[..., 0], x - half[..., 0])
    qy = np.where(cylinder, -np.inf, y - half[..., 1])
    qz = z - half[..., 2]
    out = np.sqrt(np.maximum(radial, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    return out + np.minimum(np.maximum(np.maximum(radial, qy), qz), 0.0) - rounding


def distance(points: np.ndarray, obs: Obstacles) -> np.ndarray:
    """(W, N, O) signed distance [m] from points (W, N, 3) to each obstacle's surface (negative inside)."""
    o = obs
    return sdf(
        points[:, :, None, :],
        o.centre[:, None],
        o.cos[:, None],
        o.sin[:, None],
        o.half[:, None],
        o.rounding[:, None],
        o.cylinder[:, None],
    )


def _fields(obs: Obstacles, w: np.ndarray, o: np.ndarray) -> dict:
    """Obstacle fields of the pairs (world w, obstacle o), each with a trailing axis to broadcast over."""
    return {k: getattr(obs, k)[w, o][:, None] for k in ("centre", "cos", "sin", "half", "rounding", "cylinder")}


def clearance(
    centres: np.ndarray, radius: np.ndarray, obs: Obstacles, allowed: np.ndarray, margin: float
) -> np.ndarray:
    """(W,) smallest clearance [m] between spheres (W, N, 3) of radii (W, N) and the obstacles not `allowed`
    ((W, O) bool); exact below `margin`, above it a lower bound; +inf where everything is allowed.

    One bounding sphere per world first: only the (world, obstacle) pairs it comes within `margin` of are
    computed sphere by sphere."""
    c0 = centres.mean(1)
    r0 = (np.linalg.norm(centres - c0[:, None], axis=2) + radius).max(1)
    lb = np.where(allowed, np.inf, distance(c0[:, None], obs)[:, 0] - r0[:, None])  # (W, O)
    near = lb < margin
    best = np.where(near, np.inf, lb).min(1)
    w, o = np.nonzero(near)
    if len(w):
        d = sdf(centres[w], **_fields(obs, w, o)) - radius[w]
        np.minimum.at(best, w, d.min(1))
    return best


def robot_clearance(
    body: Body, frames: np.ndarray, width: np.ndarray, obs: Obstacles, allowed: np.ndarray, margin: float
) -> np.ndarray:
    """(W,) smallest clearance [m] of the robot over n configurations per world, frames (W, n, dof + 2, 3, 4)
    (see _frames), gripper width (W,) [m], to the obstacles not `allowed` (W, O). Exact (to the sphere
    cover) below `margin`; above it a lower bound.

    Three levels, each computing only what the previous one found within `margin`: a part's bounding
    sphere over all n configurations, then over each configuration, then the part's spheres."""
    W, n = frames.shape[:2]
    flat = frames.reshape(W * n, *frames.shape[2:])
    wid = np.repeat(width, n)
    G = len(body.g_link)
    gp = _place(flat, body.g_link, body.g_centre, body.g_finger, wid).reshape(W, n, G, 3)
    c0 = gp.mean(1)  # (W, G, 3): each part's sweep
    r0 = np.linalg.norm(gp - c0[:, None], axis=3).max(1) + body.g_radius
    lb0 = np.where(allowed[:, None, :], np.inf, distance(c0, obs) - r0[..., None])  # (W, G, O)
    near0 = lb0 < margin
    best = np.where(near0, np.inf, lb0).min(axis=(1, 2))
    w, g, o = np.nonzero(near0)
    if not len(w):
        return best
    lb1 = sdf(gp[w, :, g], **_fields(obs, w, o)) - body.g_radius[g][:, None]  # (M, n): per configuration
    near1 = lb1 < margin
    np.minimum.at(best, w, np.where(near1, np.inf, lb1).min(1))
    m, j = np.nonzero(near1)
    if not len(m):
        return best
    w, g, o, config = w[m], g[m], o[m], w[m] * n + j
    spheres = body.members[g]  # (M, K)
    T = flat[config[:, None], body.link[spheres] + 1]  # (M, K, 3, 4)
    local = body.centre[spheres].copy()
    local[..., 1] += body.finger[spheres] * wid[config][:, None] / 2
    pts = np.einsum("mkij,mkj->mki", T[..., :3, :3], local) + T[..., :3, 3]
    d = sdf(pts, **_fields(obs, w, o)) - body.radius[spheres]
    np.minimum.at(best, w, d.min(1))
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


def object_spheres_batch(prims: list[tuple], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """object_spheres of W objects given by their primitive() (half, rounding, cylinder): centres (W, k, 3) [m]
    in each object's frame and radii (W, k)."""
    half = np.array([p[0] for p in prims], float).reshape(-1, 3)
    rnd = np.array([p[1] for p in prims], float)
    cyl = np.array([p[2] for p in prims], bool)
    W = len(half)
    axis = np.where(cyl, 2, np.where(rnd > 0, 0, np.argmax(half, axis=1)))
    others = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    spread = np.linalg.norm(np.take_along_axis(half, others, 1), axis=1)  # a box: the other two sides span it
    r = np.where(cyl, half[:, 0], np.where(rnd > 0, rnd, spread))
    h = half[np.arange(W), axis]
    p0 = np.zeros((W, 3))
    p0[np.arange(W), axis] = -h
    t = np.linspace(0.0, 1.0, k)
    centres = p0[:, None] + t[None, :, None] * (-2 * p0)[:, None]
    s = 2 * h / (k - 1)
    return centres, np.repeat(np.hypot(r, s / 2)[:, None], k, axis=1)
