"""Physics mode's plans from the batched planner: a chunk's attempts planned at once by the compiled planner of
`mode=kinematic` (synth/batch_planner/planner.py) and timed as that mode times them (minimum-jerk segments,
synth/kinematic_mode.timeline), each then executed and judged by the physics as before. An attempt the batched
planner cannot solve (its IK fails, or a straight segment or transit is in collision) falls back to the task's own
per-attempt plan (mink IK, MuJoCo collision checks, OMPL transits); its record's `seconds` then holds "fallback".

`planner=` (synth/config.py) picks it: batched, per_attempt (every attempt planned alone: the datasets of
dataset_version 2), or auto (batched where the task's script and randomizers allow it).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import mujoco
import numpy as np

from synth.errors import ConfigError
from synth.randomize import stream
from synth.skill import Placing
from synth.task import Attempt, Plan, PlanContext
from synth.types import Scene


class Worker(Protocol):
    """What plan_all reads of a physics worker (synth.pipeline.Worker)."""

    task: Any
    seed: int
    emb: Any
    ctx: PlanContext
    batch_planner: Any

    def context(self, scene: Scene) -> PlanContext: ...


PLANNERS = ("auto", "batched", "per_attempt")


def unplannable(task, randomizers) -> str:
    """Why the batched planner cannot plan this task's attempts ('' if it can): the task's script must be one
    arm's pick-and-place (`kinematic = True`, one arm, no line segment) and every randomizer must leave the
    expert's plan to the scene (none that moves the robot's base or draws a recovery move: those are the
    per-attempt expert's)."""
    if not getattr(task, "kinematic", False):
        return f"task={task.name} has no script the batched planner runs (kinematic = False)"
    if getattr(task, "arms", 1) != 1 or any(s.motion == "line" for s in task.script().segments):
        return f"task={task.name}: physics mode plans batched only one arm's pick-and-place scripts"
    refused = [r.name for r in randomizers if not (r.kinematic or r.acts_on == "execution")]
    if refused:
        return f"randomizers {refused} change the per-attempt expert's plan"
    return ""


def resolve(planner: str, mode: str, task, randomizers) -> str:
    """The planner physics mode runs, "batched" or "per_attempt", for the key's value `planner` (one of PLANNERS);
    ConfigError where batched is asked for and cannot run. mode=kinematic always plans batched."""
    if mode == "kinematic":
        if planner == "per_attempt":
            raise ConfigError("mode=kinematic plans every attempt batched; drop planner= or use mode=physics")
        return "batched"
    why = unplannable(task, randomizers)
    if planner == "batched" and why:
        raise ConfigError(f"planner=batched: {why}; use planner=per_attempt (or auto)")
    if planner == "auto":
        return "per_attempt" if why else "batched"
    return planner


def plan_all(worker: Worker, atts: list[Attempt]) -> None:
    """Plan the attempts `atts` (each with its scene and model, no plan yet) in place: batched, then the task's own
    per-attempt plan for those the batched planner failed. seconds["plan"]: each attempt's share of the batch
    [s]; seconds["fallback"]: the per-attempt plan's time, only where it ran."""
    todo = [a for a in atts if a.model is not None and not a.failure]
    if not todo:
        return
    t0 = time.perf_counter()
    out = worker.batch_planner.plan([a.scene for a in todo])
    ok = np.flatnonzero(out["ok"])
    plans: list[Plan] = _plans(worker, [todo[w] for w in ok], out, ok) if len(ok) else []
    share = (time.perf_counter() - t0) / len(todo)
    for a, p in zip([todo[w] for w in ok], plans, strict=True):
        a.plan, a.seconds["plan"] = p, share
    for w in np.flatnonzero(~out["ok"]):
        a = todo[w]
        t1 = time.perf_counter()
        seed = int(stream(worker.seed, a.index, "planner").integers(2**31 - 2))
        alone = worker.task.plan(worker.context(a.scene), a.scene, a.model, seed)
        a.seconds["plan"], a.seconds["fallback"] = share, time.perf_counter() - t1
        if isinstance(alone, str):
            a.failure = alone
        else:
            alone.stats["planner"] = {"batched": str(out["reason"][w]), "used": "per_attempt"}
            a.plan = alone


def _plans(worker: Worker, atts: list[Attempt], out: dict, ok: np.ndarray) -> list[Plan]:
    """The Plans of the planned worlds `ok` (E,) of the batch plan `out`, in physics mode's form: actions (T, A) at
    the control rate, phases, and the check its judge reads (each move's object height at rest z0 [m] and the
    frames that end its lift and its transit, the place target, the grasp width)."""
    from synth.kinematic_mode import timeline

    task: Placing = worker.task  # type: ignore[assignment]  # a kinematic-capable task (unplannable says so)
    hz = worker.ctx.control_hz
    q, width = out["q"][ok], out["width"][ok]  # (E, M, 1 + K, dof), (E, M)
    tl = timeline(task, worker.emb, q, hz, {p: v[ok] for p, v in out["via"].items()})  # detoured transits too
    seg, length = tl["segment"], tl["length"]
    E, T = seg.shape
    M = q.shape[1]
    script = worker.batch_planner.script
    S = len(script.segments)
    index = {s.phase: j for j, s in enumerate(script.segments)}
    valid = np.arange(T)[None] < length[:, None]
    frame = np.arange(T) + 1  # the frame an action leads to
    ends = {
        p: np.stack([np.where(valid & (seg <= m * S + index[p]), frame, 0).max(1) for m in range(M)], 1)
        for p in ("lift", "transit")
    }  # (E, M) per pick-and-place, the frame after its lift and after its transit
    plans = []
    for e, a in enumerate(atts):
        n = int(length[e])
        moves = [
            {"object": p.object, "z0": _rest_z(a.model, p.object), "lift_end": int(le), "transit_end": int(te)}
            for p, le, te in zip(task.placements(a.scene), ends["lift"][e], ends["transit"][e], strict=True)
        ]
        check = {
            "z0": moves[-1]["z0"],
            "lift_end": moves[-1]["lift_end"],
            "transit_end": moves[-1]["transit_end"],
            **task.place_check(a.scene),
            "grasp_width": float(width[e, -1]),
        }
        if M > 1:
            check["moves"] = moves
        w = ok[e]
        stats = {
            "planner": "batched",
            "grasp": "top",
            "grasp_option": int(out["option"][w, 0]),
            "grasp_width": float(width[e, 0]),
            "clearance_m": {p: round(float(v[w].min()), 5) for p, v in out["clearance"].items()},
            "duration_s": n / hz,
        }
        if M > 1:
            stats["moves"] = [
                {"grasp": "top", "grasp_option": int(out["option"][w, m]), "grasp_width": float(width[e, m])}
                for m in range(1, M)
            ]
        plans.append(Plan(tl["actions"][e, :n].copy(), tl["phase"][e, :n].astype(np.int64), check, stats))
    return plans


def _rest_z(model: mujoco.MjModel, i: int) -> float:
    """Height [m] of objects[i]'s centre as the model holds it at the start (what the per-attempt plan reads)."""
    j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"obj{i}")
    return float(model.qpos0[model.jnt_qposadr[j] + 2])
