"""`mode=kinematic`: pick-and-place demonstrations planned, collision-checked and timed for a batch of
W attempts at once in numpy, with no physics and no rendering.

Per attempt the scene, the randomizer draws and the instruction are exactly physics mode's (same
streams). Then, batched over the attempts: top-down grasps from planners/grasps.py, damped-least-squares
IK of the key poses (hover, pre-grasp, grasp, lift, above the place, place) each from the previous one,
straight joint-space segments checked against the world with planners/capsules.py (the carried object
moves with the hand from the lift to the place), and minimum-jerk (quintic) timing of each segment
within the arm's velocity and acceleration limits at the control rate. A failed grasp option is
retried with the next closing direction; what still fails is `ik_failure` or `no_path`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from synth.embodiment import Embodiment
from synth.kinematics import Chain, Kinematics
from synth.planners import capsules, grasps, sweep
from synth.planners.capsules import OBJECT, TABLE, TARGET, Body, Obstacles
from synth.scenes.pick_place import PickPlace
from synth.types import Scene

SUPPORTED = ("pick_place", "place_in_container")
STEP = 0.03  # [rad] largest joint motion between two collision samples of a segment
FLIP = 1.2  # [rad] a short straight move whose IK solution turns a joint further is a wrist flip
OPTIONS = 4  # grasp options (closing directions) tried per attempt
# the segments of a pick-and-place: (phase, start key, end key); "hold" keeps the arm still
SEGMENTS = (
    ("approach", "home", "hover"),
    ("pre_grasp", "hover", "pre"),
    ("grasp", "pre", "grasp"),
    ("close", "grasp", "grasp"),
    ("lift", "grasp", "lift"),
    ("transit", "lift", "above"),
    ("place", "above", "place"),
    ("open", "place", "place"),
    ("retreat", "place", "above"),
)
KEYS = ("hover", "pre", "grasp", "lift", "above", "place")
CARRIED = ("lift", "transit", "place")  # the object moves with the hand in these phases


def jit() -> bool:
    """Whether to plan with the numba-compiled kernels (planners/sweep_jit.py's sweep, ~5x faster, and
    synth/kinematics_jit.py's IK): numba imports and SYNTH_JIT is not 0. Otherwise the numpy references
    (planners/sweep.py, synth/kinematics.py), which give the same plans to rounding."""
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
    """Key TCP poses of W attempts and their grasp options: pos (W, OPTIONS, 6, 3) [m] in KEYS order, rot
    (W, OPTIONS, 3, 3), width (W, OPTIONS) [m] the object width across the fingers, has (W, OPTIONS) bool
    whether the attempt has that option (the closing directions of planners/grasps.py, best first)."""

    pos: np.ndarray
    rot: np.ndarray
    width: np.ndarray
    has: np.ndarray


def targets(task: PickPlace, scenes: list[Scene], emb: Embodiment) -> Targets:
    """The key poses of every top-down grasp option per scene (planners/grasps.py's, for all at once)."""
    base = emb.base_pose()[0]
    max_depth, max_width = grasps.reach(emb.gripper)
    W = len(scenes)
    yaw, width, has = np.zeros((W, OPTIONS)), np.zeros((W, OPTIONS)), np.zeros((W, OPTIONS), bool)
    facts = np.empty((W, 6))  # object x, y, table height, half height, place x, y, release height
    release = np.empty(W)
    for w, sc in enumerate(scenes):
        obj = sc.objects[0]
        opts = grasps.closing_options(obj, max_width)[:OPTIONS]
        yaw[w, : len(opts)] = [o[0] for o in opts]
        width[w, : len(opts)] = [o[1] for o in opts]
        has[w, : len(opts)] = True
        facts[w] = (*obj.xy, sc.table.height, obj.half_height, *task.place_xy(sc))
        release[w] = task.release_z(sc)
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
    place = np.c_[place_xy, release][:, None] - (centre - g)
    up = np.array([0.0, 0.0, 1.0])
    pos = np.stack(
        [g - task.hover * z, g - task.pre_grasp * z, g, g + task.lift * up, place + task.above_place * up, place], 2
    )
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
    def of(scenes: list[Scene]) -> Carried:
        objs = [sc.objects[0] for sc in scenes]
        centre = np.array([(*o.xy, sc.table.height + o.half_height) for o, sc in zip(objs, scenes, strict=True)])
        spheres, radii = capsules.object_spheres_batch([capsules.primitive(o) for o in objs])
        return Carried(centre, np.array([o.yaw for o in objs]), spheres, radii)

    def take(self, idx: np.ndarray) -> Carried:
        return Carried(self.centre[idx], self.yaw[idx], self.spheres[idx], self.radii[idx])


def take(obs: Obstacles, idx: np.ndarray) -> Obstacles:
    """The obstacles of the worlds idx."""
    return Obstacles(*(getattr(obs, f)[idx] for f in Obstacles.__dataclass_fields__))


class Planner:
    """Plans pick-and-places for batches of scenes; one per worker process."""

    def __init__(self, task: PickPlace, emb: Embodiment, control_hz: float):
        self.task, self.emb, self.hz = task, emb, control_hz
        self.base = emb.base_pose()[0]
        self.kin = Kinematics(emb, self.base)
        self.body = Body.of(emb)
        self.base_T = self.kin.base
        self.sweep: Callable[..., np.ndarray] = sweep.segment_clearance
        self.ik: Callable[..., tuple[np.ndarray, np.ndarray]] = self.kin.ik
        self.hands: Callable[[np.ndarray], Chain] = partial(self.kin.fk, links=False)
        if jit():
            from synth import kinematics_jit
            from synth.planners import sweep_jit

            self.sweep, self.ik = sweep_jit.segment_clearance, partial(kinematics_jit.ik, self.kin)
            self.hands = partial(kinematics_jit.hands, self.kin)

    def warm(self) -> None:
        """Loads (or compiles) the compiled kernels now: a forking parent calls this once for all its workers."""
        dof = self.emb.dof
        q = np.tile(self.kin.home, (1, 1 + len(KEYS), 1)) + np.linspace(0.0, 0.1, 1 + len(KEYS))[None, :, None]
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
        self.check(q.reshape(1, 1 + len(KEYS), dof), np.full(1, 0.03), carried, obs)
        self.ik(np.array([[0.4, 0.0, 0.4]]), np.eye(3)[None], q[:, 0], iters=2)
        self.hands(q[:, 0])

    # ------------------------------------------------------------------ inverse kinematics
    def solve(self, pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q (W, 7 keys incl. home, dof), ok (W,)): the key configurations of TCP poses pos (W, 6, 3) [m] in
        KEYS order with orientation rot (W, 3, 3), each solved from the previous."""
        W = len(pos)
        q = np.empty((W, 1 + len(KEYS), self.emb.dof))
        q[:, 0] = self.kin.home
        ok = np.ones(W, bool)
        for k, name in enumerate(KEYS):
            sol, conv = self.ik(pos[:, k], rot, q[:, k], iters=30)
            ok &= conv
            if name in ("pre", "grasp", "lift", "place"):
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

    def check(self, q: np.ndarray, width: np.ndarray, obj: Carried, obs: Obstacles) -> dict[str, np.ndarray]:
        """Clearance [m] beyond the required margin per checked phase, each (W,); negative = collision. q (W, 7,
        dof) key configurations, width (W,) [m] the grasped width."""
        role = obs.role
        obj0, table, target = role == OBJECT, role == TABLE, role == TARGET
        k = {name: i for i, name in enumerate(("home", *KEYS))}
        open_w = np.full(len(q), self.emb.gripper.stroke)
        # the carried object's spheres in the hand frame at the grasp
        hand = self.kin.fk(q[:, k["grasp"]]).hand
        c, s = np.cos(obj.yaw)[:, None], np.sin(obj.yaw)[:, None]
        sp = obj.spheres
        world = np.stack([c * sp[..., 0] - s * sp[..., 1], s * sp[..., 0] + c * sp[..., 1], sp[..., 2]], -1)
        world = world + obj.centre[:, None]
        carry = (np.einsum("wki,wij->wkj", world - hand[:, None, :3, 3], hand[:, :3, :3]), obj.radii)
        out = {
            "approach": self.segment_clear(q[:, 0], q[:, k["hover"]], obs, np.zeros_like(obj0), 0.01, open_w),
            "pre_grasp": self.segment_clear(q[:, k["hover"]], q[:, k["pre"]], obs, obj0 | table, 0.003, open_w),
            "grasp": self.segment_clear(q[:, k["pre"]], q[:, k["grasp"]], obs, obj0 | table, 0.003, open_w),
            "lift": self.segment_clear(q[:, k["grasp"]], q[:, k["lift"]], obs, obj0 | table, 0.01, width, carry),
            "transit": self.segment_clear(q[:, k["lift"]], q[:, k["above"]], obs, obj0, 0.01, width, carry),
            "place": self.segment_clear(
                q[:, k["above"]], q[:, k["place"]], obs, obj0 | table | target, 0.003, width, carry
            ),
            "retreat": self.segment_clear(
                q[:, k["place"]], q[:, k["above"]], obs, obj0 | table | target, 0.003, open_w
            ),
        }
        return out

    # ------------------------------------------------------------------ the batch
    def plan(self, scenes: list[Scene]) -> dict:
        """Plans for every scene: {"ok" (W,), "reason" [str], "q" (W, 7, dof) key configurations, "width" (W,),
        "rot" (W, 3, 3), "clearance" {phase: (W,)}, "option" (W,)}."""
        W = len(scenes)
        obs = capsules.obstacles(scenes)
        q = np.tile(self.kin.home, (W, 1 + len(KEYS), 1))
        width, rot = np.zeros(W), np.tile(np.eye(3), (W, 1, 1))
        ok, option = np.zeros(W, bool), np.full(W, -1)
        reason = np.array(["ik_failure"] * W, dtype=object)
        clear = {
            p: np.full(W, np.nan) for p in ("approach", "pre_grasp", "grasp", "lift", "transit", "place", "retreat")
        }
        t = targets(self.task, scenes, self.emb)
        carried = Carried.of(scenes)
        for opt in range(OPTIONS):
            idx = np.flatnonzero(~ok & t.has[:, opt])
            if not len(idx):
                continue
            qs, solved = self.solve(t.pos[idx, opt], t.rot[idx, opt])
            keep = np.flatnonzero(solved)
            if not len(keep):
                continue
            w = idx[keep]
            c = self.check(qs[keep], t.width[w, opt], carried.take(w), take(obs, w))
            free = np.all([v >= 0 for v in c.values()], axis=0)
            reason[w] = np.where(free, "", "no_path")
            for p, v in c.items():
                clear[p][w] = v
            w_ok = w[free]
            ok[w_ok], option[w_ok] = True, opt
            q[w_ok], width[w_ok], rot[w_ok] = qs[keep][free], t.width[w_ok, opt], t.rot[w_ok, opt]
        return {
            "ok": ok,
            "reason": list(reason),
            "q": q,
            "width": width,
            "rot": rot,
            "clearance": clear,
            "option": option,
        }
