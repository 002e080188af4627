"""The batched planner of `mode=kinematic` for a task that drives a pair of arms (scenes/bimanual_lift.py): the
task's one skill script (synth/skill.py) run by both arms at once, for W attempts.

Per attempt each arm's key poses come from its own grasp (the task's `grasp_poses`, options tried in the task's
order); each arm's IK solves them from its home, each from the one before it (synth/arm_kinematics.py, the base
turned as mounted). Every segment (each leg of one through `via` keys) is a straight joint-space motion of both
arms together, sampled every STEP of the largest joint motion of either: each arm swept against the world as
planner.py does (the object carried with the first hand while the grippers are closed, as physics mode's
checker carries it), and the two arms' sphere covers checked against each other at the same samples. What fails
every option is `ik_failure` or `no_path` (there is no OMPL fallback here). Shapes: W worlds, A arms, K keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Protocol

import numpy as np

from synth.arm_kinematics import Chain, Kinematics
from synth.batch_planner import capsules, sweep
from synth.batch_planner.capsules import OBJECT, TABLE, Body, Obstacles
from synth.batch_planner.planner import STEP, Carried, jit, take
from synth.embodiment import Embodiment
from synth.skill import FLIP, START, Script
from synth.types import Obj, Scene


class Lifting(Protocol):
    """What the pair planner and worker read of a task that drives a pair of arms (scenes/bimanual_lift.py)."""

    phases: ClassVar[tuple[str, ...]]

    def script(self) -> Script: ...

    def scene(self) -> Scene: ...

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str: ...

    def options(self) -> list[tuple[float, bool]]: ...

    def grasps(
        self, bars: list[Obj], table: np.ndarray, bases: list[np.ndarray], emb: Embodiment, inset: float, swap: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each arm's grasp of each scene's object: TCP positions (W, A, 3) [m] and rotations (W, A, 3, 3)."""
        ...

    def lifted(self, z: np.ndarray, axis_z: np.ndarray, grips: np.ndarray, width: float) -> str:
        """'' if the object of a path (its centre's height z (F,) [m], its long axis's world z (F,), each gripper's
        opening (F, arms) [m]) ends lifted as the task's judge requires, else the failure reason."""
        ...


@dataclass
class Arm:
    """One arm of the pair: its kinematics (base placed and turned as mounted), sphere cover, its columns of
    the pair's joints, and the (possibly compiled) IK and hand poses."""

    kin: Kinematics
    body: Body
    cols: slice
    ik: Callable[..., tuple[np.ndarray, np.ndarray]]
    hands: Callable[[np.ndarray], Chain]


def between(arms: list[Arm], q0: np.ndarray, q1: np.ndarray, n: np.ndarray, width: np.ndarray, margin: float):
    """(W,) the smallest clearance [m] minus `margin` between the two arms' sphere covers over the samples
    j = 1..n (W,) of the segments q0 -> q1 (W, dof of both); width (W, 2) [m] each gripper's opening. Exact (to
    the covers) below `margin`, a lower bound above: parts' bounding spheres first, spheres where those are near."""
    W = len(q0)
    w = np.repeat(np.arange(W), n)
    j = np.arange(len(w)) - np.repeat(np.cumsum(n) - n, n) + 1
    q = q0[w] + (j / n[w])[:, None] * (q1 - q0)[w]
    frames, groups = [], []
    for a, arm in enumerate(arms):
        f = capsules._frames(arm.kin.fk(q[:, arm.cols]), arm.kin.base)  # (N, dof + 2, 3, 4)
        b = arm.body
        frames.append(f)
        groups.append(capsules._place(f, b.g_link, b.g_centre, b.g_finger, width[w, a]))  # (N, G, 3)
    (A, B), (ga, gb) = (arms[0].body, arms[1].body), groups
    d = np.linalg.norm(ga[:, :, None] - gb[:, None], axis=3) - A.g_radius[:, None] - B.g_radius[None]  # (N, Ga, Gb)
    near = d < margin
    best = np.full(W, np.inf)
    np.minimum.at(best, w, np.where(near, np.inf, d).min((1, 2)))
    m, i, k = np.nonzero(near)
    if len(m):
        pa = _spheres(frames[0][m], A, A.members[i], width[w[m], 0])
        pb = _spheres(frames[1][m], B, B.members[k], width[w[m], 1])
        ra, rb = A.radius[A.members[i]], B.radius[B.members[k]]
        dd = np.linalg.norm(pa[:, :, None] - pb[:, None], axis=3) - ra[:, :, None] - rb[:, None]
        np.minimum.at(best, w[m], dd.min((1, 2)))
    return best - margin


def _spheres(frames: np.ndarray, body: Body, spheres: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(M, K, 3) world centres of the spheres (M, K) of one arm's cover at configurations frames (M, dof + 2, 3, 4)
    (the rows of the near pairs), the fingers width (M,) [m] apart."""
    T = frames[np.arange(len(spheres))[:, None], body.link[spheres] + 1]  # (M, K, 3, 4)
    local = body.centre[spheres].copy()
    local[..., 1] += body.finger[spheres] * width[:, None] / 2
    return np.einsum("mkij,mkj->mki", T[..., :3, :3], local) + T[..., :3, 3]


class PairPlanner:
    """Plans a pair task's skill script for batches of scenes; one per worker process."""

    def __init__(self, task: Lifting, emb: Embodiment, control_hz: float):
        self.task, self.emb, self.hz = task, emb, control_hz
        self.script = task.script()
        self.keys = (START, *self.script.names)
        self.base = emb.base_pose()[0]  # the pair's anchor: synth.object_pose is relative to it
        self.sweep: Callable[..., np.ndarray] = sweep.segment_clearance
        self.between: Callable[..., np.ndarray] = between
        compiled = jit()
        if compiled:
            from synth import arm_kinematics_jit
            from synth.batch_planner import pair_jit, sweep_jit

            self.sweep, self.between = sweep_jit.segment_clearance, pair_jit.between
        self.arms: list[Arm] = []
        start = 0
        for m in emb.mounts:
            pos, yaw = m.base_pose()
            kin = Kinematics(m.body, pos, yaw)
            ik, hands = kin.ik, partial(kin.fk, links=False)
            if compiled:
                ik, hands = partial(arm_kinematics_jit.ik, kin), partial(arm_kinematics_jit.hands, kin)
            self.arms.append(Arm(kin, Body.of(m.body), slice(start, start + m.body.dof), ik, hands))
            start += m.body.dof
        self.home = np.array(emb.home)
        self.stroke = np.array([m.body.gripper.stroke for m in emb.mounts])

    def warm(self) -> None:
        """Loads (or compiles) the compiled kernels now: a forking parent calls this once for all its workers."""
        from synth.randomize import apply_many

        self.plan([sc for sc, _ in apply_many([], self.task.scene(), 0, [0])])

    # ------------------------------------------------------------------ key poses and IK
    def targets(self, scenes: list[Scene], option: int) -> tuple[np.ndarray, np.ndarray]:
        """Grasp option `option` of each scene: key TCP positions (W, A, K, 3) [m] and orientations (W, A, 3, 3)."""
        inset, swap = self.task.options()[option]
        bases = [a.kin.base[:3, 3] for a in self.arms]
        table = np.array([sc.table.height for sc in scenes])
        pos, rot = self.task.grasps([sc.objects[0] for sc in scenes], table, bases, self.emb, inset, swap)
        return self.script.positions(pos, rot[..., 2], pos), rot

    def solve(self, pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q (W, 1 + K, dof of both) the start (home) then the key configurations, ok (W,)) of key positions
        pos (W, A, K, 3) [m] and orientations rot (W, A, 3, 3), each arm's keys from its home, each from the
        previous; a straight segment's key may not turn a joint further than FLIP."""
        W = len(pos)
        q = np.tile(self.home, (W, len(self.keys), 1))
        ok = np.ones(W, bool)
        straight = self.script.straight_keys()
        for a, arm in enumerate(self.arms):
            for k, name in enumerate(self.script.names):
                prev = q[:, k, arm.cols]
                sol, conv = arm.ik(pos[:, a, k], rot[:, a], prev, iters=30)
                ok &= conv
                if name in straight:
                    ok &= np.abs(sol - prev).max(1) <= FLIP
                q[:, k + 1, arm.cols] = sol
        return q, ok

    # ------------------------------------------------------------------ collision
    def check(self, q: np.ndarray, width: np.ndarray, obj: Carried, obs: Obstacles) -> dict[str, np.ndarray]:
        """Clearance [m] beyond the segment's margin per moving segment of the script, by phase, each (W,): both
        arms against the world and each other at every leg's samples; negative = collision. q (W, 1 + K, dof),
        width (W,) [m] what the closed grippers hold; the object (carried with the first hand while the grippers
        are closed) is ignored where it rests while it is carried."""
        at = {name: i for i, name in enumerate(self.keys)}
        W = len(q)
        first = self.arms[0]
        hand = first.kin.fk(q[:, at[self.script.grasp_key], first.cols]).hand
        c, s = np.cos(obj.yaw)[:, None], np.sin(obj.yaw)[:, None]
        sp = obj.spheres
        world = np.stack([c * sp[..., 0] - s * sp[..., 1], s * sp[..., 0] + c * sp[..., 1], sp[..., 2]], -1)
        world = world + obj.centre[:, None]
        carry = (np.einsum("wki,wij->wkj", world - hand[:, None, :3, 3], hand[:, :3, :3]), obj.radii)
        touch = {"object": obs.role == OBJECT, "table": obs.role == TABLE, "place": np.zeros(obs.role.shape, bool)}
        out = {}
        for seg, carried in zip(self.script.segments, self.script.carried(), strict=True):
            if seg.motion == "hold":
                continue
            allowed = np.zeros(obs.role.shape, bool)
            for name in (*seg.touch, "object") if carried else seg.touch:
                allowed |= touch[name]
            wid = np.tile(self.stroke, (W, 1)) if seg.grip == "open" else np.repeat(width[:, None], 2, 1)
            legs = seg.legs()  # checked together: one row per (leg, world)
            rows = np.tile(np.arange(W), len(legs))
            q0 = np.concatenate([q[:, at[a]] for a, _ in legs])
            q1 = np.concatenate([q[:, at[b]] for _, b in legs])
            n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / STEP)).astype(np.int64)
            o, ok_touch, w = (obs, allowed, wid) if len(legs) == 1 else (take(obs, rows), allowed[rows], wid[rows])
            best = self.between(self.arms, q0, q1, n, w, seg.margin)
            for k, arm in enumerate(self.arms):
                held = (carry[0][rows], carry[1][rows]) if carried and k == 0 else None
                c0, c1 = q0[:, arm.cols], q1[:, arm.cols]
                best = np.minimum(
                    best, self.sweep(arm.kin, arm.body, c0, c1, n, o, ok_touch, seg.margin, w[:, k], held)
                )
            out[seg.phase] = best.reshape(len(legs), W).min(0)
        return out

    # ------------------------------------------------------------------ the batch
    def plan(self, scenes: list[Scene]) -> dict:
        """Plans every scene: {"ok" (W,), "reason" [str], "q" (W, 1, 1 + K, dof) the start then the key
        configurations (one move), "width" (W, 1) [m] the object's width across the fingers, "option" (W,)
        index into the task's options(), "clearance" {phase: (W,)}}."""
        W = len(scenes)
        obs = capsules.obstacles(scenes)
        carried = Carried.of(scenes, [0] * W)
        width = np.array([2 * sc.objects[0].size[1] for sc in scenes]).reshape(W)
        q = np.tile(self.home, (W, len(self.keys), 1))
        ok, option = np.zeros(W, bool), np.full(W, -1)
        reason = np.array(["ik_failure"] * W, dtype=object)
        clear = {s.phase: np.full(W, np.nan) for s in self.script.segments if s.motion != "hold"}
        for opt in range(len(self.task.options())):
            idx = np.flatnonzero(~ok)
            if not len(idx):
                break
            pos, rot = self.targets([scenes[i] for i in idx], opt)
            qs, solved = self.solve(pos, rot)
            keep = np.flatnonzero(solved)
            if not len(keep):
                continue
            w = idx[keep]
            c = self.check(qs[keep], width[w], carried.take(w), take(obs, w))
            free = np.all([v >= 0 for v in c.values()], axis=0)
            reason[w] = np.where(free, "", "no_path")
            for p, v in c.items():
                clear[p][w] = v
            ok[w[free]], option[w[free]], q[w[free]] = True, opt, qs[keep][free]
        return {
            "ok": ok,
            "reason": list(reason),
            "q": q[:, None],
            "width": width[:, None],
            "option": option,
            "clearance": clear,
        }
