"""The kinematic mode's worker: attempts -> batched plans (synth/batch_planner/planner.py) -> timed trajectories ->
an EpisodeBatch in the same form as physics mode's episodes (state = the planned joints and gripper width). A
task driving a pair of arms plans with synth/batch_planner/pair.py and builds its episodes in synth/kinematic_pair.py.

Timing: every segment of the task's skill script (synth/skill.py) is a straight joint-space motion with a
minimum-jerk (quintic) profile whose duration keeps each joint within the segment's share of its velocity and
acceleration limits; the gripper closes and opens while the arm holds, as in the physics plan.
Everything after the scenes is computed for the whole batch at once: arrays (W, T, ...) padded to the
longest plan, cut to each episode's own length only when the frames are concatenated for the writer.
"""

from __future__ import annotations

import json
import time

import numpy as np

from synth.actions import convert
from synth.batch_planner.planner import Planner, placement, placements, quat_from_mat
from synth.embodiment import Embodiment
from synth.language import substitute
from synth.randomize import Randomizer, Streams, apply_many, stream
from synth.skill import START, Lining, Placing
from synth.tabletop import objects
from synth.types import Episode, EpisodeBatch, Json, Scene

PEAK_V, PEAK_A = 15 / 8, 10 / np.sqrt(3)  # peak velocity and acceleration of s(tau) = 10t^3 - 15t^4 + 6t^5


def minimum_jerk(tau: np.ndarray) -> np.ndarray:
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


def path_reach(path: np.ndarray) -> np.ndarray:
    """(W, dof) [rad] the straight-line displacement that bounds each joint's speed on the joint-space polylines
    path (W, P, dof) run at one speed along their length: the length times the joint's largest share of a leg."""
    leg = np.abs(np.diff(path, axis=1))  # (W, P - 1, dof)
    n = np.maximum(np.linalg.norm(leg, axis=2, keepdims=True), 1e-12)
    return n.sum(1) * (leg / n).max(1)


def along(path: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(N, dof) the points at shares s (N,) of the length of polylines path (N, P, dof)."""
    n = np.linalg.norm(np.diff(path, axis=1), axis=2)  # (N, P - 1)
    cum = np.c_[np.zeros(len(n)), np.cumsum(n, 1)] / np.maximum(n.sum(1), 1e-12)[:, None]  # (N, P)
    i = np.minimum((s[:, None] >= cum[:, 1:-1]).sum(1), n.shape[1] - 1)  # the leg of each point
    rows = np.arange(len(s))
    t = np.clip((s - cum[rows, i]) / np.maximum(cum[rows, i + 1] - cum[rows, i], 1e-12), 0.0, 1.0)
    return path[rows, i] + t[:, None] * (path[rows, i + 1] - path[rows, i])


def timeline(
    task: Placing | Lining,
    emb: Embodiment,
    q: np.ndarray,
    hz: float,
    via: dict[str, np.ndarray] | None = None,
    line: np.ndarray | None = None,
) -> dict:
    """Actions of W plans at `hz`: {"actions" (W, T, dof+1) padded with the last, "phase" (W, T),
    "segment" (W, T) index into the script's segments repeated once per pick-and-place (move m's segment j is
    m * len(segments) + j), "length" (W,)} from q (W, M, 1 + K, dof), per pick-and-place the start then the
    script's key configurations, and via {transit phase: (W, M, 2, dof)} the via configurations of the transits
    planned as detours (NaN: straight): those run start -> via 0 -> via 1 -> end, each leg timed as the transit.
    A segment through `via` keys runs one minimum-jerk profile along the joint-space polyline's length. A
    script's line segment (M = 1) runs through its waypoint configurations line (W, N, dof) (see line_along)."""
    W, M = q.shape[:2]
    script = task.script()
    k = {name: i for i, name in enumerate((START, *script.names))}
    per = len(script.segments)
    parts = []  # (segment index, q at its start (W, dof), at its end): a detoured transit is three parts
    for j, sg in enumerate(script.segments * M):
        a, b = q[:, j // per, k[sg.start]], q[:, j // per, k[sg.end]]
        v = None if via is None or sg.phase not in via else via[sg.phase][:, j // per]
        if v is None or np.isnan(v).all():
            parts.append((j, a, b))
            continue
        v0, v1 = np.where(np.isnan(v[:, 0]), a, v[:, 0]), np.where(np.isnan(v[:, 1]), b, v[:, 1])
        parts += [(j, a, v0), (j, v0, v1), (j, v1, b)]  # straight worlds: empty, the segment, empty
    parent = np.array([j for j, _, _ in parts])
    segments = [(script.segments * M)[j] for j in parent]
    grips = [(script.grips() * M)[j] for j in parent]
    S = len(segments)
    stroke = emb.gripper.stroke if script.open_width is None else script.open_width
    width_of = {"open": stroke, "closed": 0.0}
    q0 = np.stack([a for _, a, _ in parts], 1)  # (W, S, dof)
    q1 = np.stack([b for _, _, b in parts], 1)
    n, T = np.zeros((W, S), int), np.ones((W, S))
    g0, g1, ramp = np.zeros((W, S)), np.zeros((W, S)), np.ones((W, S))
    for j, (sg, (a, b)) in enumerate(zip(segments, grips, strict=True)):
        if sg.motion == "hold":
            n[:, j] = max(2, round(sg.duration * hz))
            ramp[:, j] = max(1, round(sg.ramp * max(2, round(sg.duration * hz))))
            g0[:, j], g1[:, j] = width_of[a], width_of[b]
            continue
        fv, fa = sg.speed
        keys = [k[x] for x in sg.path]
        d = np.abs(q1[:, j] - q0[:, j]) if not sg.via else path_reach(q[:, parent[j] // per][:, keys])
        T[:, j] = np.maximum(PEAK_V * d / (emb.vmax * fv), np.sqrt(PEAK_A * d / (emb.amax * fa))).max(1)
        if sg.motion == "line":
            assert line is not None and M == 1, "a line script's waypoints, one move"
            T[:, j] = line_along(line, emb, fv, fa)
        n[:, j] = np.where(T[:, j] > 0, np.ceil(T[:, j] * hz - 1e-9), 0).astype(int)
        T[:, j] = np.maximum(T[:, j], 1e-9)
        g0[:, j] = g1[:, j] = width_of[sg.grip]
    ends = n.cumsum(1)
    length = ends[:, -1]
    f = np.arange(int(length.max()))
    seg = np.minimum((f[None, :, None] >= ends[:, None, :]).sum(2), S - 1)  # (W, T)
    rows = np.arange(W)[:, None]
    j = f[None] - (ends - n)[rows, seg] + 1  # 1-based frame within its segment
    tau = np.minimum(j / (hz * T[rows, seg]), 1.0)
    s = minimum_jerk(tau)
    arm = q0[rows, seg] + s[..., None] * (q1 - q0)[rows, seg]
    for j in (j for j, sg in enumerate(segments) if sg.via):  # through its via keys: along the joint-space polyline
        at = seg == j
        arm[at] = along(q[np.nonzero(at)[0], parent[j] // per][:, [k[x] for x in segments[j].path]], s[at])
    lines = [j for j, sg in enumerate(segments) if sg.motion == "line"]
    if lines:
        assert line is not None
        w, t = np.nonzero(seg == lines[0])
        arm[w, t] = line_along(line, emb, 1.0, 1.0, w, s[w, t])
    grip = g0[rows, seg] + (g1 - g0)[rows, seg] * np.minimum(j / ramp[rows, seg], 1.0)
    pad = f[None] >= length[:, None]
    phase = np.array([task.phases.index(sg.phase) for sg in segments])[seg]
    acts = np.concatenate([arm, grip[..., None]], 2)
    last = acts[np.arange(W), length - 1]
    acts[pad] = np.broadcast_to(last[:, None], acts.shape)[pad]
    return {"actions": acts, "phase": phase, "segment": parent[seg], "length": length}


def line_along(
    path: np.ndarray, emb: Embodiment, fv: float, fa: float, w: np.ndarray | None = None, u=None
) -> np.ndarray:
    """A motion through waypoint configurations path (W, N, dof) [rad] (repeats of the last as padding), piecewise
    straight in joint space, each piece's share of the progress its largest joint motion in units of that joint's
    velocity limit. Without w: (W,) [s] its duration under minimum-jerk progress within the fractions fv, fa of the
    arm's velocity and acceleration limits. With w (F,) and u (F,) in [0, 1]: (F, dof) world w's configuration at
    progress u."""
    dq = np.diff(path, axis=1)  # (W, N - 1, dof)
    piece = (np.abs(dq) / emb.vmax).max(2)  # (W, N - 1) [s at full speed]
    total = np.maximum(piece.sum(1), 1e-12)
    if w is None:
        return np.maximum(PEAK_V * total / fv, np.sqrt(PEAK_A * total * (emb.vmax / emb.amax).max() / fa))
    ends = np.cumsum(piece, 1) / total[:, None]  # (W, N - 1) progress at each piece's end
    k = np.minimum((ends[w] < u[:, None]).sum(1), dq.shape[1] - 1)  # (F,) the piece
    begin = np.where(k > 0, ends[w, np.maximum(k - 1, 0)], 0.0)
    frac = np.clip((u - begin) / np.maximum(piece[w, k] / total[w], 1e-12), 0.0, 1.0)
    return path[w, k] + frac[:, None] * dq[w, k]


class KinematicWorker:
    """Turns attempt indices into kinematic episodes; the same interface as synth.pipeline.Worker, and
    `block_batch` for the writer (no Episode objects)."""

    planner_class: type[Planner] = Planner

    def __init__(
        self,
        task: Placing,
        randomizers: list[Randomizer],
        emb: Embodiment,
        seed: int,
        control_hz: float = 20.0,
        held_out: bool = False,
        batch: int = 1024,
        action: str = "joint_pos",
    ):
        self.task, self.randomizers, self.emb, self.seed = task, randomizers, emb, seed
        self.hz, self.held_out, self.batch, self.action = control_hz, held_out, batch, action
        self.planner = self.planner_class(task, emb, control_hz)
        script = self.planner.script
        self.seg = {s.phase: j for j, s in enumerate(script.segments)}
        self.held = np.flatnonzero(script.held())  # segments in which the fingers rest on the object's width
        self.carried = np.flatnonzero(script.carried())  # ... in which the object moves with the hand
        self.released = np.flatnonzero(script.released())  # ... after it was let go

    def block(self, indices: list[int], need: int | None = None) -> tuple[list[Episode], list[dict]]:
        """Attempts `indices` -> (successful episodes in index order, one record per attempt)."""
        batch, records = self.block_batch(indices, need)
        return batch.episodes(), records

    def block_batch(self, indices: list[int], need: int | None = None) -> tuple[EpisodeBatch, list[dict]]:
        """Attempts `indices` -> (successful episodes in index order, one record per attempt); with `need`,
        stops after the batch in which that many succeeded."""
        parts, records = [], []
        for k in range(0, len(indices), self.batch):
            b, r = self._batch(indices[k : k + self.batch])
            parts.append(b)
            records += r
            if need is not None and sum(len(p) for p in parts) >= need:
                break
        return EpisodeBatch.concat(parts), records

    def _batch(self, indices: list[int]) -> tuple[EpisodeBatch, list[dict]]:
        t0 = time.perf_counter()
        with objects.points_only():  # a mesh's hull is for the physics: the same draws without it
            drawn = apply_many(self.randomizers, self.task.scene(), self.seed, indices)
        scenes, draws = [sc for sc, _ in drawn], [d for _, d in drawn]
        words = Streams(self.seed, indices, "instruction")
        texts = []
        for j, scene in enumerate(scenes):
            text = self.task.instruction(scene, words[j], self.held_out)
            texts.append(substitute(text, scene.perturb.words))  # synonyms, as in physics mode
        t1 = time.perf_counter()
        plan = self.planner.plan(scenes)
        t2 = time.perf_counter()
        reason = list(plan["reason"])
        ok = np.flatnonzero(plan["ok"])
        batch = EpisodeBatch.concat([])
        draws_json = [Json(json.dumps(d)) for d in draws]
        if len(ok):
            batch, verdict = self.episodes(ok, indices, scenes, draws_json, texts, plan)
            for w, why in zip(ok, verdict, strict=True):
                reason[w] = str(why)
        t3 = time.perf_counter()
        W = len(indices)
        seconds = Json(json.dumps({"randomize": (t1 - t0) / W, "plan": (t2 - t1) / W, "episode": (t3 - t2) / W}))
        records = [
            {"attempt": i, "success": not reason[w], "reason": reason[w], "seconds": seconds, "draws": draws_json[w]}
            for w, i in enumerate(indices)
        ]
        return batch, records

    def episodes(
        self, ok: np.ndarray, indices: list[int], scenes: list[Scene], draws: list[Json], texts: list[str], plan: dict
    ) -> tuple[EpisodeBatch, list[str]]:
        """The planned worlds `ok` (E,) as episodes (those whose object comes to rest inside the target) and
        (E,) their verdicts ('' or the failure reason). Frame t's state is reached by action t - 1; state 0 is the
        start. A pair task's: synth/kinematic_pair.py (PairWorker)."""
        emb, base = self.emb, self.planner.base
        q, width = plan["q"][ok], plan["width"][ok]  # (E, M, 1 + K, dof), (E, M)
        tl = self._timeline(q, plan, ok)
        acts, seg, length = tl["actions"], tl["segment"], tl["length"]
        E, T = seg.shape
        M, S = q.shape[1], len(self.planner.script.segments)
        # every episode's states 0..length, laid end to end: F = sum(length + 1) rows
        have = np.arange(T + 1)[None] <= length[:, None]  # (E, T + 1)
        states = np.concatenate([np.broadcast_to(emb.start, (E, 1, emb.dof + 1)), acts], 1)[have]  # (F, dof + 1)
        seg0 = np.c_[np.full(E, -1), seg][have]  # the segment that led to each state
        ep = np.repeat(np.arange(E), length + 1)
        move, part = np.where(seg0 >= 0, seg0 // S, 0), np.where(seg0 >= 0, seg0 % S, -1)  # seg0's move and segment
        held = np.maximum(states[:, -1], width[ep, move])
        states[:, -1] = np.where(np.isin(part, self.held), held, states[:, -1])
        ch = self.planner.hands(states[:, :-1])  # links=False: the hand's poses only
        ee = np.concatenate([ch.tcp - base, quat_from_mat(ch.tcp_rot)], 1)  # (F, 7)
        obj, verdict, final = self._object_path(ok, scenes, ch.hand, move, part, ep, q)
        inside = np.array([not v for v in verdict], bool).reshape(-1)
        first = np.cumsum(length + 1) - (length + 1)  # each episode's state 0
        is_first = np.zeros(len(ep), bool)
        is_first[first] = True
        is_last = np.r_[is_first[1:], True]
        rows = ~is_last & inside[ep]  # the written frames: states 0..length-1 of the kept episodes
        after = np.flatnonzero(rows) + 1  # the state each frame's action leads to
        keep = np.flatnonzero(inside)
        state = states[rows].astype(np.float32)
        starts = np.cumsum(length[keep]) - length[keep]
        self.noisy(state, [(scenes[ok[e]], indices[ok[e]], int(length[e]), int(starts[k])) for k, e in enumerate(keep)])
        frame = (np.arange(T)[None] < length[:, None]) & inside[:, None]  # (E, T), in the order of `rows`
        acts_f = acts[frame]
        action = convert(self.action, acts_f, state, ee[after], ee[rows])
        labels = {
            "synth.phase": tl["phase"][frame].astype(np.int64),
            "observation.ee_pose": ee[rows].astype(np.float32),
            "synth.object_pose": (obj[rows] - np.r_[base, np.zeros(4)]).astype(np.float32),
        }
        if self.action != "joint_pos":
            labels["synth.joint_target"] = acts_f.astype(np.float32)
        valid = np.arange(T)[None] < length[:, None]
        ends: dict[str, list[np.ndarray]] = {  # per pick-and-place, (E,) the frame after its lift and its transit
            p: [np.where(valid & (seg <= m * S + self.seg[p]), np.arange(T) + 1, 0).max(1) for m in range(M)]
            for p in ("lift", "transit")
            if p in self.seg
        }
        metas: list[dict | Json] = [
            self._meta(int(e), int(w), scenes[w], indices[w], draws, plan, width, length, final, ends)
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
        return batch, verdict

    def _timeline(self, q: np.ndarray, plan: dict, ok: np.ndarray) -> dict:
        """timeline() of the planned worlds ok (E,), their key configurations q (E, M, 1 + K, dof)."""
        return timeline(self.task, self.emb, q, self.hz, {p: v[ok] for p, v in plan["via"].items()})

    def noisy(self, state: np.ndarray, episodes: list[tuple[Scene, int, int, int]]) -> None:
        """Adds what a policy observes of noise, as physics mode does, to the written states (N, columns) in
        place: per episode (scene, attempt, frames, its first row)."""
        gripper = np.isin(np.arange(state.shape[1]), self.emb.gripper_columns)
        for scene, attempt, n, at in episodes:
            noisy = scene.perturb.state_noise
            if not (noisy.joints or noisy.gripper):
                continue
            std = np.where(gripper, noisy.gripper, noisy.joints)
            if std.any():
                noise = stream(self.seed, attempt, "state_noise").normal(size=(n, state.shape[1])) * std
                state[at : at + n] = (state[at : at + n] + noise).astype(np.float32)

    def _meta(
        self,
        e: int,
        w: int,
        scene: Scene,
        attempt: int,
        draws: list[Json],
        plan: dict,
        width: np.ndarray,
        length: np.ndarray,
        final: np.ndarray,
        ends: dict[str, list[np.ndarray]],
    ) -> Json:
        """Episode e's (world w's) meta, json.dumps of {attempt, seed, mode, draws, planner, check} with the draws
        serialized once per attempt: the check and planner stats in physics mode's form (the last pick-and-place's
        z0, lift and transit ends and grasp width; with several, "moves" per pick-and-place in order)."""
        M = width.shape[1]
        z0 = [float(scene.table.height + scene.objects[p.object].half_height) for p in placements(self.task, scene)]
        check = {
            "z0": z0[-1],
            "lift_end": int(ends["lift"][-1][e]),
            "transit_end": int(ends["transit"][-1][e]),
            **self.task.place_check(scene),
            "grasp_width": float(width[e, -1]),
            "kinematic": {
                "ik": True,
                "clearance_m": {p: round(float(v[w].min()), 5) for p, v in plan["clearance"].items()},
                "inside": True,
                "object_final": [round(float(x), 5) for x in final[e, 0]]
                if M == 1
                else [[round(float(x), 5) for x in f] for f in final[e]],
            },
        }
        stats = {
            "grasp": "top",
            "grasp_option": int(plan["option"][w, 0]),
            "grasp_width": float(width[e, 0]),
            "duration_s": int(length[e]) / self.hz,
        }
        detours = sum(int((~np.isnan(v[w, :, 0, 0])).sum()) for v in plan["via"].values())
        if detours:  # transits planned as detours over the scene (batch_planner/detour.py), all moves together
            stats["detours"] = detours
        if M > 1:  # per pick-and-place, in order, as physics mode's plans record them
            check["moves"] = [
                {
                    "object": p.object,
                    "z0": z0[m],
                    "lift_end": int(ends["lift"][m][e]),
                    "transit_end": int(ends["transit"][m][e]),
                }
                for m, p in enumerate(placements(self.task, scene))
            ]
            stats["moves"] = [
                {"grasp": "top", "grasp_option": int(plan["option"][w, m]), "grasp_width": float(width[e, m])}
                for m in range(1, M)
            ]
        return Json(
            f'{{"attempt": {attempt}, "seed": {json.dumps(self.seed)}, "mode": "kinematic", "draws": '
            f'{draws[w]}, "planner": {json.dumps(stats)}, "check": {json.dumps(check)}}}'
        )

    def _object_path(
        self,
        ok: np.ndarray,
        scenes: list[Scene],
        hand: np.ndarray,
        move: np.ndarray,
        part: np.ndarray,
        ep: np.ndarray,
        q: np.ndarray,
    ):
        """(F, 7) world pose of objects[0] (the object the dataset follows) at each state (resting, carried with
        the hand, then resting where it was released), (E,) the verdicts: '' where every pick-and-place's object
        ends placed at rest (the task's `placed`), else "placed_outside", (E, M, 3) each pick-and-place's object's
        final position. The F states of E
        episodes laid end to end: hand (F, 3, 4) poses, move (F,) and part (F,) the pick-and-place and the script's
        segment leading to each (part -1: none, the start), ep (F,) the episode of each; q (E, M, 1 + K, dof) per
        pick-and-place the start then the key configurations."""
        E, M = q.shape[:2]
        kept = [scenes[w] for w in ok]
        assert isinstance(self.planner, Planner)
        script = self.planner.script
        grasp_key = 1 + script.names.index(script.grasp_key)
        carried, released = np.isin(part, self.carried), np.isin(part, self.released)
        out, drops = None, np.empty((E, M, 3))
        for m in range(M):
            objs = [(sc.objects[p.object], p) for sc, p in ((sc, placement(self.task, sc, m)) for sc in kept)]
            h = [sc.table.height for sc in kept]
            facts = np.array(
                [
                    (*o.xy, t + o.half_height, o.yaw, p.rest, o.shape == "capsule")
                    for (o, p), t in zip(objs, h, strict=True)
                ]
            ).reshape(E, 6)
            p0, yaw, rest_z, capsule = facts[:, :3], facts[:, 3], facts[:, 4], facts[:, 5] > 0
            c, s = np.cos(yaw / 2), np.sin(yaw / 2)
            q0 = np.stack([c, np.zeros(E), np.zeros(E), s], 1)  # object_quat: yaw about z
            r = np.sqrt(0.5)  # a capsule lies along x: q0 * (cos 45, 0, sin 45, 0)
            q0[capsule] = np.stack([c * r, -s * r, c * r, s * r], 1)[capsule]
            R0 = _quat_to_mat(q0)
            grasp = self.planner.kin.fk(q[:, m, grasp_key]).hand  # (E, 3, 4)
            rel_R = grasp[:, :, :3].transpose(0, 2, 1) @ R0
            rel_p = np.einsum("eji,ej->ei", grasp[:, :, :3], p0 - grasp[:, :, 3])
            path = np.c_[p0, quat_from_mat(R0)][ep]  # (F, 7)
            mine = np.flatnonzero(carried & (move == m))
            H, e = hand[mine], ep[mine]
            path[mine, :3] = np.einsum("fij,fj->fi", H[:, :, :3], rel_p[e]) + H[:, :, 3]
            path[mine, 3:] = quat_from_mat(H[:, :, :3] @ rel_R[e])
            last = np.zeros(E, np.int64)
            np.maximum.at(last, e, mine)  # each episode's last carried state of this move
            drop = path[last].copy()
            drop[:, 2] = rest_z  # it falls straight down to rest when released
            drops[:, m] = drop[:, :3]
            if objs[0][1].object == 0:  # the followed object: at rest where released from then on
                after = np.flatnonzero((released & (move == m)) | (move > m))
                path[after] = drop[ep[after]]
                out = path
        assert out is not None, "no pick-and-place moves objects[0]"
        return out, ["" if p else "placed_outside" for p in self.task.placed(kept, drops)], drops


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices of unit quaternions q (N, 4) (w, x, y, z)."""
    w, x, y, z = q.T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)
