"""The kinematic mode's episodes for a task that drives a pair of arms (scenes/bimanual_lift.py): batched plans
(synth/batch_planner/pair.py) -> timed trajectories -> an EpisodeBatch with physics mode's features (state: per arm
the planned joints and gripper width; observation.ee_pose: per arm its TCP in its own base frame;
synth.object_pose: the object relative to the pair's anchor, world axes).

Both arms run the one script together: its segments are timed for the pair's joints at once (kinematic_mode's
minimum-jerk timeline), so the hands arrive at every key together. The object moves with both hands from the
first carried segment on: at every state it is turned by the rotation that takes the line between the two TCPs
at the grasp to the line between them now, and its centre follows their midpoint. Its verdict is the task's own
predicate (`lifted`) on that path; a plan whose hands move more than STRETCH closer or apart while both hold the
object is "not_held" (the fingers would slip along it, or pull it apart).
"""

from __future__ import annotations

import json
from typing import cast

import numpy as np

from synth.actions import convert
from synth.batch_planner.pair import Lifting, PairPlanner
from synth.batch_planner.planner import quat_from_mat
from synth.kinematic_mode import KinematicWorker, timeline
from synth.types import EpisodeBatch, Json, Scene


class PairWorker(KinematicWorker):
    """KinematicWorker for a task driving a pair of arms: the pair planner, and its episodes built here."""

    planner_class = PairPlanner  # type: ignore[assignment]
    planner: PairPlanner  # type: ignore[assignment]

    def episodes(
        self, ok: np.ndarray, indices: list[int], scenes: list[Scene], draws: list[Json], texts: list[str], plan: dict
    ) -> tuple[EpisodeBatch, list[str]]:
        batch, why = episodes(self, ok, indices, scenes, draws, texts, plan)
        return batch, [str(x) for x in why]


STRETCH = 0.005  # [m] the change in distance between the two holding hands a rigid object allows


def aligning(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, 3, 3) the smallest rotations taking unit vectors u (N, 3) to unit vectors v (N, 3) (Rodrigues; u and v
    never opposite here: the hands do not swap sides)."""
    k = np.cross(u, v)
    c = (u * v).sum(1)
    K = np.zeros((len(u), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 0] = -k[:, 2], k[:, 1], k[:, 2]
    K[:, 1, 2], K[:, 2, 0], K[:, 2, 1] = -k[:, 0], -k[:, 1], k[:, 0]
    return np.eye(3) + K + (K @ K) / np.maximum(1.0 + c, 1e-9)[:, None, None]


def episodes(
    worker: KinematicWorker,
    ok: np.ndarray,
    indices: list[int],
    scenes: list[Scene],
    draws: list[Json],
    texts: list[str],
    plan: dict,
) -> tuple[EpisodeBatch, np.ndarray]:
    """KinematicWorker.episodes for a pair task: the planned worlds `ok` (E,) as episodes (those the task's
    predicate passes) and (E,) the failure reason of each ('' on success). Frame t's state is reached by
    action t - 1; state 0 is the start."""
    planner, emb = worker.planner, worker.emb
    assert isinstance(planner, PairPlanner)
    q, width = plan["q"][ok], plan["width"][ok, 0]  # (E, 1, 1 + K, dof), (E,)
    tl = timeline(worker.task, emb, q, worker.hz)
    seg, length = tl["segment"], tl["length"]
    acts = _per_arm(planner, tl["actions"])  # (E, T, columns)
    E, T = seg.shape
    have = np.arange(T + 1)[None] <= length[:, None]  # every episode's states 0..length, laid end to end
    states = np.concatenate([np.broadcast_to(emb.start, (E, 1, len(emb.start))), acts], 1)[have]  # (F, cols)
    seg0 = np.c_[np.full(E, -1), seg][have]  # the segment that led to each state (-1: the start)
    ep = np.repeat(np.arange(E), length + 1)
    grip = emb.gripper_columns
    held = np.isin(seg0, worker.held)[:, None]
    states[:, grip] = np.where(held, np.maximum(states[:, grip], width[ep][:, None]), states[:, grip])
    joints = np.split(np.arange(states.shape[1]), grip[:-1] + 1)  # each arm's columns, its gripper last
    chains = [arm.hands(states[:, c[:-1]]) for arm, c in zip(planner.arms, joints, strict=True)]
    ee = np.concatenate(
        [_in_base(arm.kin.base, ch.tcp, ch.tcp_rot) for arm, ch in zip(planner.arms, chains, strict=True)], 1
    )
    obj, failed, facts = _bar(worker, ok, scenes, q, [ch.tcp for ch in chains], seg0, ep, states[:, grip], width)
    inside = failed == ""
    first = np.cumsum(length + 1) - (length + 1)
    is_last = np.zeros(len(ep), bool)
    is_last[first[1:] - 1] = True
    is_last[-1] = True
    rows = ~is_last & inside[ep]  # the written frames: states 0..length-1 of the kept episodes
    after = np.flatnonzero(rows) + 1  # the state each frame's action leads to
    keep = np.flatnonzero(inside)
    state = states[rows].astype(np.float32)
    starts = np.cumsum(length[keep]) - length[keep]
    worker.noisy(state, [(scenes[ok[e]], indices[ok[e]], int(length[e]), int(starts[k])) for k, e in enumerate(keep)])
    frame = (np.arange(T)[None] < length[:, None]) & inside[:, None]  # (E, T), in the order of `rows`
    acts_f = acts[frame]
    action = _actions(worker.action, acts_f, state, ee[after], ee[rows], joints)
    labels = {
        "synth.phase": tl["phase"][frame].astype(np.int64),
        "observation.ee_pose": ee[rows].astype(np.float32),
        "synth.object_pose": (obj[rows] - np.r_[planner.base, np.zeros(4)]).astype(np.float32),
    }
    if worker.action != "joint_pos":
        labels["synth.joint_target"] = acts_f.astype(np.float32)
    metas: list[dict | Json] = [
        _meta(worker, w, indices[w], draws[w], plan, {**facts[e], "duration_s": int(length[e]) / worker.hz})
        for e, w in zip(keep, ok[keep], strict=True)
    ]
    batch = EpisodeBatch(
        state,
        action,
        labels,
        length[keep].astype(np.int64),
        np.asarray(indices, np.int64)[ok[keep]],
        [texts[w] for w in ok[keep]],
        metas,
    )
    return batch, failed


def _actions(
    kind: str, acts: np.ndarray, state: np.ndarray, ee_next: np.ndarray, ee: np.ndarray, joints: list[np.ndarray]
) -> np.ndarray:
    """(N, columns) float32 the written actions of the joint targets acts (N, columns) in convention `kind`: per
    arm (its columns in `joints`) in its own base frame, as physics mode converts them; ee (N, 7 per arm) the TCP
    poses of the states, ee_next those the targets reach."""
    if kind == "joint_pos":
        return acts.astype(np.float32)
    parts = [
        convert(kind, acts[:, c], state[:, c], ee_next[:, 7 * a : 7 * a + 7], ee[:, 7 * a : 7 * a + 7])
        for a, c in enumerate(joints)
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


def _per_arm(planner: PairPlanner, acts: np.ndarray) -> np.ndarray:
    """(E, T, columns) the timeline's actions (E, T, dof + 1), one gripper width for the pair (the first arm's
    stroke open), as per arm its joints then its gripper."""
    grip, stroke = acts[..., -1:], planner.stroke
    parts = []
    for arm, s in zip(planner.arms, stroke, strict=True):
        parts += [acts[..., arm.cols], grip if s == stroke[0] else grip * (s / stroke[0])]
    return np.concatenate(parts, -1)


def _in_base(base: np.ndarray, tcp: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(F, 7) TCP poses tcp (F, 3) [m], rot (F, 3, 3) in an arm's base frame (base (4, 4)): position, quaternion."""
    R = base[:3, :3]
    return np.c_[(tcp - base[:3, 3]) @ R, quat_from_mat(np.einsum("ji,fjk->fik", R, rot))]


def _bar(
    worker: KinematicWorker,
    ok: np.ndarray,
    scenes: list[Scene],
    q: np.ndarray,
    tcps: list[np.ndarray],
    seg0: np.ndarray,
    ep: np.ndarray,
    grips: np.ndarray,
    width: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(F, 7) the world pose of objects[0] at each state (at rest, then moved with both hands), (E,) the
    task's verdict per episode, and per episode what it measured ({"object_final", "tilt_deg", "stretch_m"}).
    tcps: each arm's TCP (F, 3) [m]; seg0 (F,) the segment leading to each state; ep (F,) its episode; grips
    (F, arms) [m] the gripper widths; width (E,) [m] the object's width across the fingers."""
    planner = worker.planner
    assert isinstance(planner, PairPlanner)
    kept = [scenes[w] for w in ok]
    o = np.array([(*sc.objects[0].xy, sc.table.height + sc.objects[0].half_height, sc.objects[0].yaw) for sc in kept])
    c0, c, s = o[:, :3], np.cos(o[:, 3]), np.sin(o[:, 3])
    R0 = np.zeros((len(o), 3, 3))  # (E, 3, 3): resting, turned by its yaw about z
    R0[:, 0, 0], R0[:, 0, 1], R0[:, 1, 0], R0[:, 1, 1], R0[:, 2, 2] = c, -s, s, c, 1.0
    g = 1 + planner.script.names.index(planner.script.grasp_key)
    at = [arm.kin.fk(q[:, 0, g, arm.cols], links=False).tcp for arm in planner.arms]  # (E, 3) per arm
    mid0, d0 = (at[0] + at[1]) / 2, at[1] - at[0]
    moving = seg0 >= int(worker.carried.min())  # from the first carried segment on (the script lets go nowhere)
    assert not len(worker.released)
    d = tcps[1] - tcps[0]
    R = np.tile(np.eye(3), (len(ep), 1, 1))
    u = d0[ep[moving]] / np.linalg.norm(d0[ep[moving]], axis=1, keepdims=True)
    R[moving] = aligning(u, d[moving] / np.linalg.norm(d[moving], axis=1, keepdims=True))
    rel = c0 - mid0
    centre = np.where(moving[:, None], (tcps[0] + tcps[1]) / 2 + np.einsum("fij,fj->fi", R, rel[ep]), c0[ep])
    rot = R @ R0[ep]
    stretch = np.where(moving, np.abs(np.linalg.norm(d, axis=1) - np.linalg.norm(d0[ep], axis=1)), 0.0)
    cut = np.cumsum(np.bincount(ep, minlength=len(ok)))[:-1]
    failed = np.empty(len(ok), dtype=object)
    facts: list[dict] = []
    for e, (z, ax, gr, st) in enumerate(
        zip(*(np.split(x, cut) for x in (centre[:, 2], rot[:, 2, 0], grips, stretch)), strict=True)
    ):
        why = cast(Lifting, worker.task).lifted(z, ax, gr, float(width[e]))
        failed[e] = why or ("not_held" if st.max() > STRETCH else "")
        tilt = float(np.degrees(np.arcsin(np.clip(np.abs(ax).max(), 0.0, 1.0))))
        facts.append({"tilt_deg": round(tilt, 4), "stretch_m": round(float(st.max()), 6)})
    last = np.r_[cut, len(ep)] - 1
    for e, f in enumerate(facts):
        f["object_final"] = [round(float(x), 5) for x in centre[last[e]]]
    return np.c_[centre, quat_from_mat(rot)], failed, facts


def _meta(worker: KinematicWorker, w: int, attempt: int, draws: Json, plan: dict, facts: dict) -> Json:
    """World w's episode meta, json.dumps of {attempt, seed, mode, draws, planner, check}: the check and
    planner stats in physics mode's form (what each hand closes on; the grasp option taken; the duration)."""
    duration = facts.pop("duration_s")
    inset, swap = cast(Lifting, worker.task).options()[int(plan["option"][w])]
    width = float(plan["width"][w, 0])
    check = {
        "width": width,
        "kinematic": {
            "ik": True,
            "clearance_m": {p: round(float(v[w]), 5) for p, v in plan["clearance"].items()},
            "lifted": True,
            **facts,
        },
    }
    stats = {"inset": inset, "swap": swap, "grasp_option": int(plan["option"][w]), "duration_s": duration}
    return Json(
        f'{{"attempt": {attempt}, "seed": {json.dumps(worker.seed)}, "mode": "kinematic", "draws": '
        f'{draws}, "planner": {json.dumps(stats)}, "check": {json.dumps(check)}}}'
    )
