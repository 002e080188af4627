"""The kinematic mode's worker: attempts -> batched plans (synth/kinematic.py) -> timed trajectories ->
episodes in the same form as physics mode's (state = the planned joints and gripper width, no physics).

Timing: every segment is a straight joint-space motion with a minimum-jerk (quintic) profile whose
duration keeps each joint within the phase's share of its velocity and acceleration limits (the
physics plan's SPEEDS); the gripper closes and opens while the arm holds, as in the physics plan.
"""

from __future__ import annotations

import time

import numpy as np

from synth.actions import convert
from synth.embodiment import Embodiment
from synth.kinematic import CARRIED, KEYS, SEGMENTS, Planner, quat_from_mat, quat_to_mat
from synth.language import substitute
from synth.randomize import Randomizer, apply, stream
from synth.scenes.pick_place import PHASES, SPEEDS, PickPlace, surface_z
from synth.scenes.tabletop import object_quat
from synth.types import Episode, Scene

PEAK_V, PEAK_A = 15 / 8, 10 / np.sqrt(3)  # peak velocity and acceleration of s(tau) = 10t^3 - 15t^4 + 6t^5


def minimum_jerk(tau: np.ndarray) -> np.ndarray:
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


def timeline(task: PickPlace, emb: Embodiment, q: np.ndarray, width: np.ndarray, hz: float) -> dict:
    """Actions of W plans at `hz`: {"actions" (W, T, dof+1) padded with the last, "phase" (W, T),
    "segment" (W, T) index into SEGMENTS, "length" (W,)} from key configurations q (W, 7, dof)."""
    W = len(q)
    k = {name: i for i, name in enumerate(("home", *KEYS))}
    stroke = emb.gripper.stroke
    q0 = np.stack([q[:, k[a]] for _, a, _ in SEGMENTS], 1)  # (W, K, dof)
    q1 = np.stack([q[:, k[b]] for _, _, b in SEGMENTS], 1)
    n, T = np.zeros((W, len(SEGMENTS)), int), np.ones((W, len(SEGMENTS)))
    g0, g1, ramp = np.zeros((W, len(SEGMENTS))), np.zeros((W, len(SEGMENTS))), np.ones((W, len(SEGMENTS)))
    for j, (phase, _, _) in enumerate(SEGMENTS):
        if phase in ("close", "open"):
            dur, frac = (task.close_time, 0.6) if phase == "close" else (task.open_time, 0.5)
            n[:, j] = max(2, round(dur * hz))
            ramp[:, j] = max(1, round(frac * n[0, j]))
            g0[:, j], g1[:, j] = (stroke, 0.0) if phase == "close" else (0.0, stroke)
            continue
        fv, fa = (min(1.0, f * task.speed) for f in SPEEDS[phase])
        d = np.abs(q1[:, j] - q0[:, j])
        T[:, j] = np.maximum(PEAK_V * d / (emb.vmax * fv), np.sqrt(PEAK_A * d / (emb.amax * fa))).max(1)
        n[:, j] = np.where(T[:, j] > 0, np.ceil(T[:, j] * hz - 1e-9), 0).astype(int)
        T[:, j] = np.maximum(T[:, j], 1e-9)
        g0[:, j] = g1[:, j] = 0.0 if phase in CARRIED else stroke
    ends = n.cumsum(1)
    length = ends[:, -1]
    f = np.arange(int(length.max()))
    seg = np.minimum((f[None, :, None] >= ends[:, None, :]).sum(2), len(SEGMENTS) - 1)  # (W, T)
    rows = np.arange(W)[:, None]
    j = f[None] - (ends - n)[rows, seg] + 1  # 1-based frame within its segment
    tau = np.minimum(j / (hz * T[rows, seg]), 1.0)
    s = minimum_jerk(tau)
    arm = q0[rows, seg] + s[..., None] * (q1 - q0)[rows, seg]
    grip = g0[rows, seg] + (g1 - g0)[rows, seg] * np.minimum(j / ramp[rows, seg], 1.0)
    pad = f[None] >= length[:, None]
    phase = np.array([PHASES.index(p) for p, _, _ in SEGMENTS])[seg]
    acts = np.concatenate([arm, grip[..., None]], 2)
    last = acts[np.arange(W), length - 1]
    acts[pad] = np.broadcast_to(last[:, None], acts.shape)[pad]
    return {"actions": acts, "phase": phase, "segment": seg, "length": length}


class KinematicWorker:
    """Turns attempt indices into kinematic episodes; the same interface as synth.pipeline.Worker."""

    def __init__(
        self,
        task: PickPlace,
        randomizers: list[Randomizer],
        emb: Embodiment,
        seed: int,
        control_hz: float = 20.0,
        held_out: bool = False,
        batch: int = 128,
        action: str = "joint_pos",
    ):
        self.task, self.randomizers, self.emb, self.seed = task, randomizers, emb, seed
        self.hz, self.held_out, self.batch, self.action = control_hz, held_out, batch, action
        self.planner = Planner(task, emb, control_hz)

    def block(self, indices: list[int], need: int | None = None) -> tuple[list[Episode], list[dict]]:
        """Attempts `indices` -> (successful episodes in index order, one record per attempt); with `need`,
        stops after the batch in which that many succeeded."""
        episodes, records = [], []
        for k in range(0, len(indices), self.batch):
            e, r = self._batch(indices[k : k + self.batch])
            episodes += e
            records += r
            if need is not None and len(episodes) >= need:
                break
        return episodes, records

    def _batch(self, indices: list[int]) -> tuple[list[Episode], list[dict]]:
        t0 = time.perf_counter()
        scenes, draws, texts = [], [], []
        for i in indices:
            scene, d = apply(self.randomizers, self.task.scene(), self.seed, i)
            scenes.append(scene)
            draws.append(d)
            text = self.task.instruction(scene, stream(self.seed, i, "instruction"), self.held_out)
            texts.append(substitute(text, scene.words) if scene.words else text)  # synonyms, as in physics mode
        t1 = time.perf_counter()
        plan = self.planner.plan(scenes)
        tl = timeline(self.task, self.emb, plan["q"], plan["width"], self.hz) if plan["ok"].any() else None
        t2 = time.perf_counter()
        episodes, records = [], []
        for w, i in enumerate(indices):
            reason = plan["reason"][w]
            ep = None
            if not reason and tl is not None:
                ep = self.episode(i, scenes[w], draws[w], texts[w], plan, tl, w)
                reason = "" if ep.meta["check"]["kinematic"]["inside"] else "placed_outside"
            if ep is not None and not reason:
                episodes.append(ep)
            records.append(
                {
                    "attempt": i,
                    "success": not reason,
                    "reason": reason,
                    "seconds": {"randomize": (t1 - t0) / len(indices), "plan": (t2 - t1) / len(indices)},
                    "draws": draws[w],
                }
            )
        t3 = time.perf_counter()
        for r in records:
            r["seconds"]["episode"] = (t3 - t2) / len(indices)
        return episodes, records

    def episode(self, i: int, scene: Scene, draws: dict, text: str, plan: dict, tl: dict, w: int) -> Episode:
        """World w of the batch as an episode: T frames, the state before each action."""
        emb, kin, T = self.emb, self.planner.kin, int(tl["length"][w])
        acts = tl["actions"][w, :T]
        seg = tl["segment"][w, :T]
        states = np.concatenate([emb.start[None], acts])  # (T + 1, dof + 1): state t+1 is reached by action t
        held = np.isin(np.r_[-1, seg], [j for j, s in enumerate(SEGMENTS) if s[0] in ("close", *CARRIED, "open")])
        states[:, -1] = np.where(held, np.maximum(states[:, -1], plan["width"][w]), states[:, -1])
        ch = kin.fk(states[:, :-1])
        ee = np.c_[ch.tcp - self.planner.base, quat_from_mat(ch.tcp_rot)]
        obj_world, inside, final = self._object_path(scene, ch.hand, np.r_[-1, seg], plan, w)
        obj = np.c_[obj_world[:, :3] - self.planner.base, obj_world[:, 3:]]
        state = states[:T].astype(np.float32)
        std = np.where(np.isin(np.arange(state.shape[1]), emb.gripper_columns), *scene.state_noise[::-1])
        if std.any():  # what a policy observes is noisy, as in physics mode
            state = (state + stream(self.seed, i, "state_noise").normal(size=state.shape) * std).astype(np.float32)
        action = convert(self.action, acts, state, ee[1:], ee[:T])
        labels = {
            "synth.phase": tl["phase"][w, :T].astype(np.int64),
            "observation.ee_pose": ee[:T].astype(np.float32),
            "synth.object_pose": obj[:T].astype(np.float32),
        }
        if self.action != "joint_pos":
            labels["synth.joint_target"] = acts.astype(np.float32)
        k_lift = [j for j, s in enumerate(SEGMENTS) if s[0] == "lift"][0]
        k_transit = [j for j, s in enumerate(SEGMENTS) if s[0] == "transit"][0]
        check = {
            "z0": float(scene.table.height + scene.objects[0].half_height),
            "lift_end": int(np.flatnonzero(seg <= k_lift)[-1] + 1),
            "transit_end": int(np.flatnonzero(seg <= k_transit)[-1] + 1),
            **self.task.place_check(scene),
            "grasp_width": float(plan["width"][w]),
            "kinematic": {
                "ik": True,
                "clearance_m": {p: round(float(v[w]), 5) for p, v in plan["clearance"].items()},
                "inside": inside,
                "object_final": [round(float(x), 5) for x in final],
            },
        }
        stats = {
            "grasp": "top",
            "grasp_option": int(plan["option"][w]),
            "grasp_width": float(plan["width"][w]),
            "duration_s": T / self.hz,
        }
        meta = {"attempt": i, "seed": self.seed, "mode": "kinematic", "draws": draws, "planner": stats, "check": check}
        return Episode(i, text, state, action, labels, {}, meta)

    def _object_path(self, scene: Scene, hand: np.ndarray, seg: np.ndarray, plan: dict, w: int):
        """(F, 7) world pose of the task's object at each state frame (resting, carried with the hand,
        then resting where it was released), whether it ends inside the target at rest, its final position."""
        obj = scene.objects[0]
        R0 = quat_to_mat(object_quat(obj))
        p0 = np.array([obj.xy[0], obj.xy[1], scene.table.height + obj.half_height])
        carried = np.isin(seg, [j for j, s in enumerate(SEGMENTS) if s[0] in CARRIED])
        released = np.isin(seg, [j for j, s in enumerate(SEGMENTS) if s[0] in ("open", "retreat")])
        grasp_hand = self.planner.kin.fk(plan["q"][w, 1 + KEYS.index("grasp")][None]).hand[0]
        rel_R = grasp_hand[:3, :3].T @ R0
        rel_p = grasp_hand[:3, :3].T @ (p0 - grasp_hand[:3, 3])
        out = np.tile(np.r_[p0, quat_from_mat(R0[None])[0]], (len(seg), 1))
        if carried.any():
            H = hand[carried]
            out[carried, :3] = np.einsum("fij,j->fi", H[:, :3, :3], rel_p) + H[:, :3, 3]
            out[carried, 3:] = quat_from_mat(H[:, :3, :3] @ rel_R)
        last = np.flatnonzero(carried)[-1]
        drop = out[last].copy()
        drop[2] = surface_z(scene) + obj.half_height  # it falls straight down to rest when released
        out[released] = drop
        tg = scene.target
        lo, hi = self.task.rest_band(scene)
        inside = bool(np.all(np.abs(drop[:2] - np.asarray(tg.pos)) <= np.asarray(tg.size)) and lo < drop[2] < hi)
        return out, inside, drop[:3]
