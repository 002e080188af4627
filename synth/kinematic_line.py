"""The kinematic mode's worker for a line script (synth/skill.py: push, the drawers): synth/kinematic_mode.py's
worker with the line planner (synth/batch_planner/line.py), the line timed through its waypoints, and what the line
moves (the pushed object, the drawer) following the hand.

What the task follows is still until the line starts, then moves with the hand's advance along the line (the
furthest so far: the task's `follow`), and rests where the line left it. Its final pose is judged by the task's
own test (`kinematic_verdict`): a push whose object ends outside the target is a failure with the judge's reason,
as a drawer that does not end where the judge accepts it. The episode's check and planner stats take physics
mode's form (`line_check`), so physics mode's judge reads kinematic plans unchanged.
"""

from __future__ import annotations

import json

import numpy as np

from synth.batch_planner.line import LinePlanner
from synth.kinematic_mode import KinematicWorker, timeline
from synth.kinematic_pair import PairWorker
from synth.skill import Lining, Placing
from synth.types import Json, Scene


def worker_class(task: Placing | Lining) -> type[KinematicWorker]:
    """The kinematic worker of a task: PairWorker for a pair of arms, LineWorker for a script with a line segment,
    else KinematicWorker."""
    if getattr(task, "arms", 1) > 1:
        return PairWorker
    return LineWorker if any(s.motion == "line" for s in task.script().segments) else KinematicWorker


class LineWorker(KinematicWorker):
    """KinematicWorker for a line script."""

    planner_class = LinePlanner
    planner: LinePlanner  # type: ignore[assignment]
    task: Lining  # type: ignore[assignment]

    def _timeline(self, q: np.ndarray, plan: dict, ok: np.ndarray) -> dict:
        return timeline(self.task, self.emb, q, self.hz, line=plan["path"][ok])

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
        """(F, 7) world pose of what the task follows at each state, (E,) the verdicts, (E, 1, 3) its final
        position; hand (F, 3, 4) the hand's poses, part (F,) the script's segment leading to each state (-1: the
        start), ep (F,) its episode, q (E, 1, 1 + K, dof) the start then the key configurations."""
        kept = [scenes[w] for w in ok]
        script = self.planner.script
        line = script.line
        j = script.segments.index(line)
        a = self.planner.hands(q[:, 0, 1 + script.names.index(line.start)]).hand[:, :, 3]  # (E, 3) the hand's origin
        b = self.planner.hands(q[:, 0, 1 + script.names.index(line.end)]).hand[:, :, 3]
        e = (b - a) / np.maximum(np.linalg.norm(b - a, axis=1, keepdims=True), 1e-12)
        adv = np.einsum("fi,fi->f", hand[:, :, 3] - a[ep], e[ep])
        adv = np.where(part == j, np.maximum(adv, 0.0), 0.0)
        adv = np.maximum.accumulate(adv + 10.0 * ep) - 10.0 * ep  # the furthest so far, per episode (each < 10 m)
        path = self.task.follow(kept, ep, adv)
        last = np.cumsum(np.bincount(ep, minlength=len(kept))) - 1  # each episode's last state
        return path, self.task.kinematic_verdict(kept, adv[last]), path[last][:, None, :3]

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
        """Episode e's (world w's) meta: {attempt, seed, mode, draws, planner, check} in physics mode's form, the
        check with the kinematic verdict's facts."""
        check, stats = self.task.line_check(scene)
        check["kinematic"] = {
            "ik": True,
            "clearance_m": {p: round(float(v[w].min()), 5) for p, v in plan["clearance"].items()},
            "inside": True,
            "object_final": [round(float(x), 5) for x in final[e, 0]],
        }
        stats = {**stats, "hand_sign": (1.0, -1.0)[int(plan["option"][w, 0])], "duration_s": int(length[e]) / self.hz}
        return Json(
            f'{{"attempt": {attempt}, "seed": {json.dumps(self.seed)}, "mode": "kinematic", "draws": '
            f'{draws[w]}, "planner": {json.dumps(stats)}, "check": {json.dumps(check)}}}'
        )
