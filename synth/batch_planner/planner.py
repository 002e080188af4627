"""The batched planner of `mode=kinematic`: the task's skill script (synth/skill.py) planned, collision-checked
and timed for a batch of W attempts at once, with no physics and no rendering.

Per attempt the scene, the randomizer draws and the instruction are exactly physics mode's (same
streams). Then, batched over the attempts: top-down grasps from synth/grasps.py, damped-least-squares
IK of the script's key poses, the first from the arm's home and each other from the one before it, every
segment a straight joint-space one checked against the world with capsules.py with the script's
touches and margins (the carried object moves with the hand while the gripper is closed), and minimum-jerk
(quintic) timing of each segment within the script's share of the arm's velocity and acceleration limits at
the control rate. A failed grasp option is retried with the next closing direction; what still fails is
`ik_failure` or `no_path`; a transit whose straight segment collides is detoured over the scene first
(detour.py, where physics mode has OMPL). A task with several placements
(synth/skill.Placement) runs the script once per placement, in order, each from where the last one ended, the
objects already placed as obstacles where they rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from synth import grasps
from synth.arm_kinematics import Chain, Kinematics
from synth.batch_planner import capsules, sweep
from synth.batch_planner.capsules import OBJECT, TABLE, TARGET, Body, Obstacles
from synth.batch_planner.detour import Transit, detours
from synth.embodiment import Embodiment
from synth.skill import FLIP, START, Placement, Placing, Script, place_tcp
from synth.types import Scene

STEP = 0.03  # [rad] largest joint motion between two collision samples of a segment
OPTIONS = 4  # grasp options (closing directions) tried per attempt


def jit() -> bool:
    """Whether to plan with the numba-compiled kernels (sweep_jit.py's sweep, ~5x faster, and
    synth/arm_kinematics_jit.py's IK): numba imports and SYNTH_JIT is not 0. Otherwise the numpy references
    (sweep.py, synth/arm_kinematics.py), which give the same plans to rounding."""
    if os.environ.get("SYNTH_JIT", "1") == "0":
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def quat_from_mat(R: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z), w >= 0, of rotation matrices R (N, 3, 3) (Shepperd's method)."""
    m = R.reshape(-1, 3, 3)
    r00, r01, r02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    r10, r11, r12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    r20, r21, r22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    big = 0.5 * np.sqrt(
        np.maximum(1.0 + np.stack([r00 + r11 + r22, r00 - r11 - r22, r11 - r00 - r22, r22 - r00 - r11]), 1e-12)
    )
    case = np.argmax(big, 0)
    f = 0.25 / big
    cand = np.stack(
        [
            [big[0], (r21 - r12) * f[0], (r02 - r20) * f[0], (r10 - r01) * f[0]],
            [(r21 - r12) * f[1], big[1], (r01 + r10) * f[1], (r02 + r20) * f[1]],
            [(r02 - r20) * f[2], (r01 + r10) * f[2], big[2], (r12 + r21) * f[2]],
            [(r10 - r01) * f[3], (r02 + r20) * f[3], (r12 + r21) * f[3], big[3]],
        ]
    )  # (case, component, N)
    q = cand[case, :, np.arange(len(m))]
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass
class Targets:
    """Key TCP poses of W attempts and their grasp options: pos (W, OPTIONS, K, 3) [m] in the script's order, rot
    (W, OPTIONS, 3, 3), width (W, OPTIONS) [m] the object width across the fingers, has (W, OPTIONS) bool
    whether the attempt has that option (the closing directions of synth/grasps.py, best first)."""

    pos: np.ndarray
    rot: np.ndarray
    width: np.ndarray
    has: np.ndarray


_PLACES: dict[tuple[int, int], tuple[Placing, Scene, list[Placement]]] = {}
KEEP = 8192  # scenes whose placements are kept


def placements(task: Placing, scene: Scene) -> list[Placement]:
    """task.placements(scene), computed once per scene (the planner and the episodes ask for them per move; a
    task's may take a fraction of a millisecond); the kept entries hold their scenes, so no id is reused."""
    key = (id(task), id(scene))
    hit = _PLACES.get(key)
    if hit is None or hit[0] is not task or hit[1] is not scene:
        if len(_PLACES) >= KEEP:
            _PLACES.clear()
        hit = _PLACES[key] = (task, scene, task.placements(scene))
    return hit[2]


def placement(task: Placing, scene: Scene, move: int = 0) -> Placement:
    """The pick-and-place `move` (0, 1, ...) of a scene."""
    return placements(task, scene)[move]


def placed_obstacles(task: Placing, scenes: list[Scene], obs: Obstacles, moves: int) -> Obstacles:
    """The obstacles with the objects of the first `moves` pick-and-places where they were set down: centred at
    their place x, y and at their resting height (their yaw unchanged: the hand keeps its orientation)."""
    centre = obs.centre.copy()
    for w, sc in enumerate(scenes):
        for p in placements(task, sc)[:moves]:
            row = obs.role[w] == OBJECT + p.object
            centre[w, row] = (*p.xy, p.rest)
    return Obstacles(centre, obs.cos, obs.sin, obs.half, obs.rounding, obs.cylinder, obs.role)


def touches(task: Placing, scenes: list[Scene], obs: Obstacles, move: int = 0) -> dict[str, np.ndarray]:
    """(W, O) per name of synth.skill.TOUCH, the obstacles it stands for in each scene: the placed object where it
    rests, the table, and where it is set down (the table, its target, the objects it goes on)."""
    ps = [placement(task, sc, move) for sc in scenes]
    role = obs.role
    obj = role == OBJECT + np.array([p.object for p in ps])[:, None]
    place = (role == TABLE) | ((role == TARGET) & np.array([p.target is not None for p in ps])[:, None])
    for j in {j for p in ps for j in p.on}:
        place |= (role == OBJECT + j) & np.array([j in p.on for p in ps])[:, None]
    return {"object": obj, "table": role == TABLE, "place": place}


def targets(task: Placing, scenes: list[Scene], emb: Embodiment, move: int = 0) -> Targets:
    """The script's key poses of pick-and-place `move` for every top-down grasp option per scene (synth/grasps.py's,
    for all at once)."""
    base = emb.base_pose()[0]
    max_depth, max_width = grasps.reach(emb.gripper)
    W = len(scenes)
    yaw, width, has = np.zeros((W, OPTIONS)), np.zeros((W, OPTIONS)), np.zeros((W, OPTIONS), bool)
    facts = np.empty((W, 6))  # object x, y, table height, half height, place x, y, release height
    release = np.empty(W)
    for w, sc in enumerate(scenes):
        p = placement(task, sc, move)
        obj = sc.objects[p.object]
        opts = grasps.closing_options(obj, max_width)[:OPTIONS]
        yaw[w, : len(opts)] = [o[0] for o in opts]
        width[w, : len(opts)] = [o[1] for o in opts]
        has[w, : len(opts)] = True
        facts[w] = (*obj.xy, sc.table.height, obj.half_height, *p.xy)
        release[w] = p.release
    xy, h, half, place_xy = facts[:, :2], facts[:, 2:3], facts[:, 3:4], facts[:, 4:6]
    # grasps._frame with no tilt: y along the closing direction, z down, the hand facing away from the base
    y = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], -1)  # (W, OPTIONS, 3)
    z0 = np.array([0.0, 0.0, -1.0])
    x0 = np.cross(y, z0)
    radial = xy - base[:2]
    radial = radial / (np.linalg.norm(radial, axis=1, keepdims=True) + 1e-9)
    flip = ((x0[..., :2] * radial[:, None]).sum(-1) < 0)[..., None]
    y, x0 = np.where(flip, -y, y), np.where(flip, -x0, x0)
    z = np.broadcast_to(z0, y.shape)
    rot = np.stack([np.cross(y, z), y, z], -1)
    centre = np.concatenate([xy, h + half], 1)[:, None]  # (W, 1, 3)
    gz = np.broadcast_to(grasps.tcp_height(h, half, max_depth, task.grasp_below), (W, OPTIONS))
    g = np.concatenate([np.broadcast_to(centre[..., :2], (W, OPTIONS, 2)), gz[..., None]], -1)
    pos = task.script().positions(g, z, place_tcp(g, centre, np.c_[place_xy, release][:, None]))
    return Targets(pos, rot, width, has)


@dataclass
class Carried:
    """The task's object per world as the hand carries it: centre (W, 3) [m] at rest, yaw (W,) [rad], and
    spheres containing it, centres (W, K, 3) [m] in its own frame and radii (W, K)."""

    centre: np.ndarray
    yaw: np.ndarray
    spheres: np.ndarray
    radii: np.ndarray

    @staticmethod
    def of(scenes: list[Scene], index: list[int]) -> Carried:
        """The objects objects[index[w]] of the scenes."""
        objs = [sc.objects[i] for sc, i in zip(scenes, index, strict=True)]
        centre = np.array([(*o.xy, sc.table.height + o.half_height) for o, sc in zip(objs, scenes, strict=True)])
        spheres, radii = capsules.object_spheres_batch([capsules.primitive(o) for o in objs])
        return Carried(centre, np.array([o.yaw for o in objs]), spheres, radii)

    def take(self, idx: np.ndarray) -> Carried:
        return Carried(self.centre[idx], self.yaw[idx], self.spheres[idx], self.radii[idx])


def take(obs: Obstacles, idx: np.ndarray) -> Obstacles:
    """The obstacles of the worlds idx."""
    return Obstacles(*(getattr(obs, f)[idx] for f in Obstacles.__dataclass_fields__))


class Planner:
    """Plans a task's skill script for batches of scenes; one per worker process."""

    def __init__(self, task: Placing, emb: Embodiment, control_hz: float):
        self.task, self.emb, self.hz = task, emb, control_hz
        self.script: Script = task.script()
        self.keys = (START, *self.script.names)  # the key configurations' order: the start (home), then the script's
        self.base = emb.base_pose()[0]
        self.kin = Kinematics(emb, self.base)
        self.body = Body.of(emb)
        self.base_T = self.kin.base
        self.sweep: Callable[..., np.ndarray] = sweep.segment_clearance
        self.ik: Callable[..., tuple[np.ndarray, np.ndarray]] = self.kin.ik
        self.hands: Callable[[np.ndarray], Chain] = partial(self.kin.fk, links=False)
        if jit():
            from synth import arm_kinematics_jit
            from synth.batch_planner import sweep_jit

            self.sweep, self.ik = sweep_jit.segment_clearance, partial(arm_kinematics_jit.ik, self.kin)
            self.hands = partial(arm_kinematics_jit.hands, self.kin)

    def warm(self) -> None:
        """Loads (or compiles) the compiled kernels now: a forking parent calls this once for all its workers."""
        dof = self.emb.dof
        K = len(self.keys)
        q = np.tile(self.kin.home, (1, K, 1)) + np.linspace(0.0, 0.1, K)[None, :, None]
        obs = Obstacles(
            np.array([[[0.0, 0.0, -1.0]]]),
            np.ones((1, 1)),
            np.zeros((1, 1)),
            np.array([[[10.0, 10.0, 1.0]]]),
            np.zeros((1, 1)),
            np.zeros((1, 1), bool),
            np.full((1, 1), capsules.FLOOR),
        )
        carried = Carried(np.array([[0.5, 0.0, 0.05]]), np.zeros(1), np.zeros((1, 5, 3)), np.full((1, 5), 0.02))
        touch = {name: np.zeros((1, 1), bool) for name in ("object", "table", "place")}
        self.check(q.reshape(1, K, dof), np.full(1, 0.03), carried, obs, touch)
        self.ik(np.array([[0.4, 0.0, 0.4]]), np.eye(3)[None], q[:, 0], iters=2)
        self.hands(q[:, 0])

    # ------------------------------------------------------------------ inverse kinematics
    def solve(self, pos: np.ndarray, rot: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q (W, 1 + K, dof) the start then the key configurations, ok (W,)) of the script's TCP poses pos
        (W, K, 3) [m] with orientation rot (W, 3, 3), each solved from the previous, the first from start (W, dof)."""
        W = len(pos)
        q = np.empty((W, len(self.keys), self.emb.dof))
        q[:, 0] = start
        ok = np.ones(W, bool)
        straight = self.script.straight_keys()
        for k, name in enumerate(self.script.names):
            sol, conv = self.ik(pos[:, k], rot, q[:, k], iters=30)
            ok &= conv
            if name in straight:
                ok &= np.abs(sol - q[:, k]).max(1) <= FLIP
            q[:, k + 1] = sol
        return q, ok

    # ------------------------------------------------------------------ collision
    def segment_clear(
        self,
        q0: np.ndarray,
        q1: np.ndarray,
        obs: Obstacles,
        allowed: np.ndarray,
        margin: float,
        width: np.ndarray,
        carry: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """(W,) the smallest clearance [m] minus `margin` along the straight segments q0 -> q1 (W, dof),
        sampled every STEP of each world's largest joint motion (the start excluded); `carry` is
        (centres (W, K, 3) in the hand frame, radii (W, K)) of a carried object."""
        n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / STEP)).astype(np.int64)  # samples per world
        return self.sweep(self.kin, self.body, q0, q1, n, obs, allowed, margin, width, carry)

    def check(
        self, q: np.ndarray, width: np.ndarray, obj: Carried, obs: Obstacles, touch: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(clearance, via): clearance [m] beyond the segment's margin per moving segment of the script, by phase,
        each (W,), negative = collision; via {transit phase: (W, 2, dof)} the detours of the transits whose
        straight segment collides, NaN where it is clear (detour.detours). q (W, 1 + K, dof) the start then the key
        configurations, width (W,) [m] the grasped width. touch: (W, O) the obstacles each name a segment may touch
        stands for (see touches); the object where it rests is ignored too while it is carried."""
        k = {name: i for i, name in enumerate(self.keys)}
        open_w = np.full(len(q), self.emb.gripper.stroke)
        # the carried object's spheres in the hand frame at the grasp
        hand = self.kin.fk(q[:, k[self.script.grasp_key]]).hand
        c, s = np.cos(obj.yaw)[:, None], np.sin(obj.yaw)[:, None]
        sp = obj.spheres
        world = np.stack([c * sp[..., 0] - s * sp[..., 1], s * sp[..., 0] + c * sp[..., 1], sp[..., 2]], -1)
        world = world + obj.centre[:, None]
        carry = (np.einsum("wki,wij->wkj", world - hand[:, None, :3, 3], hand[:, :3, :3]), obj.radii)
        out, transits = {}, {}
        for seg, carried in zip(self.script.segments, self.script.carried(), strict=True):
            if seg.motion == "hold":
                continue
            allowed = np.zeros(obs.role.shape, bool)
            for name in (*seg.touch, "object") if carried else seg.touch:
                allowed |= touch[name]
            t = Transit(
                q[:, k[seg.start]],
                q[:, k[seg.end]],
                obs,
                allowed,
                seg.margin,
                width if seg.grip == "closed" else open_w,
                carry if carried else None,
            )
            out[seg.phase] = self.segment_clear(t.q0, t.q1, t.obs, t.allowed, t.margin, t.width, t.carry)
            if seg.motion == "transit":
                transits[seg.phase] = t
        return out, detours(out, transits, self.hands, self.ik, self.segment_clear)

    # ------------------------------------------------------------------ the batch
    def plan(self, scenes: list[Scene]) -> dict:
        """Plans every scene's pick-and-places in turn, each from where the one before ended, the objects already
        placed as obstacles where they rest: {"ok" (W,), "reason" [str], "q" (W, M, 1 + K, dof) per move the start
        then the key configurations, "width" (W, M), "rot" (W, M, 3, 3), "clearance" {phase: (W, M)},
        "option" (W, M), "via" {transit phase: (W, M, 2, dof) its detour's via configurations, NaN where straight}}
        for M pick-and-places."""
        W, M = len(scenes), len(placements(self.task, scenes[0])) if scenes else 1
        obs = capsules.obstacles(scenes)
        ok = np.ones(W, bool)
        reason = np.array([""] * W, dtype=object)
        start = np.tile(self.kin.home, (W, 1))
        moves = []
        for m in range(M):
            mv = self._move(scenes, placed_obstacles(self.task, scenes, obs, m) if m else obs, m, start, ok)
            reason[ok & ~mv["ok"]] = np.asarray(mv["reason"], dtype=object)[ok & ~mv["ok"]]
            ok &= mv["ok"]
            start = mv["q"][:, self.keys.index(self.script.segments[-1].end)]  # where the move ends
            moves.append(mv)
        return {
            "ok": ok,
            "reason": list(reason),
            "q": np.stack([mv["q"] for mv in moves], 1),
            "width": np.stack([mv["width"] for mv in moves], 1),
            "rot": np.stack([mv["rot"] for mv in moves], 1),
            "clearance": {p: np.stack([mv["clearance"][p] for mv in moves], 1) for p in moves[0]["clearance"]},
            "option": np.stack([mv["option"] for mv in moves], 1),
            "via": {p: np.stack([mv["via"][p] for mv in moves], 1) for p in moves[0]["via"]},
        }

    def _move(self, scenes: list[Scene], obs: Obstacles, move: int, start: np.ndarray, live: np.ndarray) -> dict:
        """Pick-and-place `move` of the worlds `live` (W,) bool, from joints start (W, dof): {"ok" (W,), "reason"
        [str], "q" (W, 1 + K, dof) the start then the key configurations, "width" (W,), "rot" (W, 3, 3),
        "clearance" {phase: (W,)}, "option" (W,), "via" {transit phase: (W, 2, dof)}}."""
        W = len(scenes)
        q = np.repeat(start[:, None], len(self.keys), 1)
        width, rot = np.zeros(W), np.tile(np.eye(3), (W, 1, 1))
        ok, option = np.zeros(W, bool), np.full(W, -1)
        reason = np.array(["ik_failure"] * W, dtype=object)
        clear = {s.phase: np.full(W, np.nan) for s in self.script.segments if s.motion != "hold"}
        via = {s.phase: np.full((W, 2, self.emb.dof), np.nan) for s in self.script.segments if s.motion == "transit"}
        t = targets(self.task, scenes, self.emb, move)
        carried = Carried.of(scenes, [placement(self.task, sc, move).object for sc in scenes])
        touch = touches(self.task, scenes, obs, move)
        for opt in range(OPTIONS):
            idx = np.flatnonzero(live & ~ok & t.has[:, opt])
            if not len(idx):
                continue
            qs, solved = self.solve(t.pos[idx, opt], t.rot[idx, opt], start[idx])
            keep = np.flatnonzero(solved)
            if not len(keep):
                continue
            w = idx[keep]
            c, vias = self.check(
                qs[keep], t.width[w, opt], carried.take(w), take(obs, w), {k: v[w] for k, v in touch.items()}
            )
            free = np.all([v >= 0 for v in c.values()], axis=0)
            reason[w] = np.where(free, "", "no_path")
            for p, v in c.items():
                clear[p][w] = v
            w_ok = w[free]
            ok[w_ok], option[w_ok] = True, opt
            q[w_ok], width[w_ok], rot[w_ok] = qs[keep][free], t.width[w_ok, opt], t.rot[w_ok, opt]
            for p, v in vias.items():
                via[p][w_ok] = v[free]
        return {
            "ok": ok,
            "reason": list(reason),
            "q": q,
            "width": width,
            "rot": rot,
            "clearance": clear,
            "option": option,
            "via": via,
        }
