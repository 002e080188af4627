"""The batched planner of a line script (synth/skill.py: push, the drawers) in `mode=kinematic`: W attempts at once.

Per world: the task's TCP line (`hand_line`) and the hand's rotations along it, tried in order. The keys are solved
as physics mode solves them (planners/script.line_configurations): the first from the arm's home, each other from
the one before it, the line's end through its waypoints (synth.skill.line_points, `step` apart), each from the
one before, a straight key turning no joint further than the script's `flip` and a waypoint no further than
LINE_FLIP. Every segment is checked as a straight joint-space one (the line: waypoint to waypoint) against the
world of capsules.py with the script's touches and margins, the fingers at the open width or, closed, at the
task's `held_width`; the transit has no OMPL fallback. What still fails is `ik_failure` or `no_path`.

The table is checked exactly for the finger pads: a push runs them 8 mm above it, closer than the pads' sphere cover
resolves (it reaches ~1.3 cm past a pad's end). So the sweep sees the table lowered by the pads' largest sphere
radius (their spheres clear it wherever the pads clear the real table), and the pads' box corners are checked
against the real table top at samples every PAD_STEP of the segment's largest joint motion.
"""

from __future__ import annotations

import numpy as np

from synth.batch_planner import capsules
from synth.batch_planner.capsules import DRAWER, OBJECT, TABLE, TARGET, Obstacles
from synth.batch_planner.planner import Planner, take
from synth.skill import LINE_FLIP, Lining, line_points_batch
from synth.types import Scene

PAD_STEP = 0.01  # [rad] largest joint motion between two exact checks of the pads against the table


class LinePlanner(Planner):
    """Plans a line script for batches of scenes; one per worker process."""

    task: Lining  # type: ignore[assignment]

    def warm(self) -> None:
        """Loads (or compiles) the compiled kernels now: a forking parent calls this once for all its workers."""
        home = np.array([self.kin.home])
        obs = capsules.obstacles([self.task.scene()])
        none = np.zeros(obs.role.shape, bool)
        self.segment_clear(home, home + 0.05, obs, none, 0.01, np.full(1, 0.03))
        self.ik(np.array([[0.4, 0.0, 0.4]]), np.eye(3)[None], home, iters=2)
        self.hands(home)

    def widths(self) -> dict[str, float]:
        """[m] the gripper's width while open and while closed."""
        open_w = self.script.open_width
        return {"open": self.emb.gripper.stroke if open_w is None else open_w, "closed": self.task.held_width}

    def solve_line(
        self, pos: np.ndarray, rot: np.ndarray, pts: np.ndarray, n: np.ndarray, start: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q (W, 1 + K, dof) the start then the key configurations, path (W, N, dof) the line's waypoint
        configurations padded with each world's last, ok (W,)) of key TCP positions pos (W, K, 3) [m] and the line's
        waypoints pts (W, N, 3) [m], n (W,) of them per world, the hand at rot (W, 3, 3), from start (W, dof)."""
        W, N = pts.shape[:2]
        q = np.empty((W, len(self.keys), self.emb.dof))
        q[:, 0] = start
        path = np.empty((W, N, self.emb.dof))
        ok = np.ones(W, bool)
        straight, line = self.script.straight_keys(), self.script.line
        for k, name in enumerate(self.script.names):
            if name == line.end:  # along the line: every waypoint from the one before
                path[:, 0] = q[:, k]
                for j in range(1, N):
                    path[:, j] = path[:, j - 1]
                    live = np.flatnonzero(ok & (j < n))
                    sol, conv = self.ik(pts[live, j], rot[live], path[live, j - 1], iters=30)
                    ok[live] &= conv & (np.abs(sol - path[live, j - 1]).max(1) <= LINE_FLIP)
                    path[live, j] = sol
                q[:, k + 1] = path[:, -1]
                continue
            sol, conv = self.ik(pos[:, k], rot, q[:, k], iters=30)
            ok &= conv
            if name in straight:
                ok &= np.abs(sol - q[:, k]).max(1) <= self.script.flip
            q[:, k + 1] = sol
        return q, path, ok

    def pads_above(self, q0: np.ndarray, q1: np.ndarray, width: np.ndarray, top: np.ndarray) -> np.ndarray:
        """(W,) the lowest height [m] of the finger pads' boxes above the table top top (W,) [m] over samples every
        PAD_STEP along the straight segments q0 -> q1 (W, dof), the fingers width (W,) [m] apart."""
        gr = self.emb.gripper
        n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / PAD_STEP)).astype(int)
        w = np.repeat(np.arange(len(q0)), n + 1)
        t = ((np.arange(len(w)) - np.repeat(np.cumsum(n + 1) - (n + 1), n + 1)) / n[w])[:, None]
        hand = self.hands(q0[w] + t * (q1 - q0)[w]).hand  # (M, 3, 4)
        R, low = hand[:, 2, :3], np.full(len(w), np.inf)
        drop = np.abs(R) @ np.array([0.011, 0.006, gr.finger_length / 2])  # a box's lowest corner below its centre
        for sign in (1.0, -1.0):
            centre = np.array([0.0, sign * 0.006, gr.finger_offset + gr.finger_length / 2])  # synth/robot.py's pad
            z = hand[:, 2, 3] + R @ centre + R[:, 1] * sign * width[w] / 2
            low = np.minimum(low, z - drop)
        out = np.full(len(q0), np.inf)
        np.minimum.at(out, w, low - top[w])
        return out

    def check_line(
        self, q: np.ndarray, path: np.ndarray, n: np.ndarray, obs: Obstacles, touch: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Clearance [m] beyond the segment's margin per moving segment of the script, by phase, each (W,);
        negative = collision. q (W, 1 + K, dof), path (W, N, dof) and n (W,) as solve_line gives them; touch: (W, O)
        the obstacles each name a segment may touch stands for."""
        k = {name: i for i, name in enumerate(self.keys)}
        W, width = len(q), self.widths()
        table = obs.role == TABLE
        top = (obs.centre[..., 2] + obs.half[..., 2])[table]  # (W,) one table per world
        low = Obstacles(*(getattr(obs, f).copy() for f in Obstacles.__dataclass_fields__))
        low.centre[table, 2] -= self.body.radius[self.body.finger != 0].max()  # the pads' spheres clear it
        out = {}
        for seg in self.script.segments:
            if seg.motion == "hold":
                continue
            allowed = np.zeros(obs.role.shape, bool)
            for name in seg.touch:
                allowed |= touch[name]
            wid = np.full(W, width[seg.grip])
            if seg.motion == "line":
                w, j = np.nonzero(np.arange(path.shape[1] - 1)[None] < (n - 1)[:, None])  # each waypoint to the next
                a, b = path[w, j], path[w, j + 1]
            else:
                w, a, b = np.arange(W), q[:, k[seg.start]], q[:, k[seg.end]]
            world = obs if "table" in seg.touch else low
            c = self.segment_clear(a, b, take(world, w), allowed[w], seg.margin, wid[w])
            if "table" not in seg.touch:
                c = np.minimum(c, self.pads_above(a, b, wid[w], top[w]) - seg.margin)
            out[seg.phase] = np.full(W, np.inf)
            np.minimum.at(out[seg.phase], w, c)
        return out

    def plan(self, scenes: list[Scene]) -> dict:
        """Plans every scene's line script: {"ok" (W,), "reason" [str], "q" (W, 1, 1 + K, dof) the start then the key
        configurations, "path" (W, N, dof) the line's waypoint configurations (padded with the last), "n" (W,),
        "width" (W, 1) [m] the closed fingers', "rot" (W, 1, 3, 3), "clearance" {phase: (W, 1)}, "option" (W, 1)
        the hand rotation taken (index into hand_line's)}."""
        W, dof = len(scenes), self.emb.dof
        lines = [self.task.hand_line(sc) for sc in scenes]
        start = np.array([ln[0] for ln in lines]).reshape(W, 3)
        end = np.array([ln[1] for ln in lines]).reshape(W, 3)
        rots = np.array([ln[2] for ln in lines]).reshape(W, -1, 3, 3)
        pts, n = line_points_batch(start, end, self.script.line.step)
        pos = self.script.line_positions(pts[:, 0], pts[np.arange(W), n - 1])
        obs = capsules.obstacles(scenes)
        drawer = np.array([sc.drawer is not None for sc in scenes])[:, None]
        touch = {
            "object": np.where(drawer, obs.role == DRAWER, obs.role == OBJECT),
            "table": obs.role == TABLE,
            "place": obs.role == TARGET,
        }
        q = np.repeat(np.tile(self.kin.home, (W, 1))[:, None], len(self.keys), 1)
        path, rot = np.repeat(q[:, :1], pts.shape[1], 1), rots[:, 0].copy()
        ok, option = np.zeros(W, bool), np.full(W, -1)
        reason = np.array(["ik_failure"] * W, dtype=object)
        clear = {s.phase: np.full(W, np.nan) for s in self.script.segments if s.motion != "hold"}
        for opt in range(rots.shape[1]):
            idx = np.flatnonzero(~ok)
            if not len(idx):
                break
            qs, ps, solved = self.solve_line(pos[idx], rots[idx, opt], pts[idx], n[idx], q[idx, 0])
            keep = np.flatnonzero(solved)
            if not len(keep):
                continue
            w = idx[keep]
            c = self.check_line(qs[keep], ps[keep], n[w], take(obs, w), {k: v[w] for k, v in touch.items()})
            free = np.all([v >= 0 for v in c.values()], axis=0)
            reason[w] = np.where(free, "", "no_path")
            for p, v in c.items():
                clear[p][w] = v
            w_ok = w[free]
            ok[w_ok], option[w_ok], rot[w_ok] = True, opt, rots[w_ok, opt]
            q[w_ok], path[w_ok] = qs[keep][free], ps[keep][free]
        return {
            "ok": ok,
            "reason": list(reason),
            "q": q[:, None],
            "path": path.reshape(W, -1, dof),
            "n": n,
            "width": np.full((W, 1), self.task.held_width),
            "rot": rot[:, None],
            "clearance": {p: v[:, None] for p, v in clear.items()},
            "option": option[:, None],
        }
