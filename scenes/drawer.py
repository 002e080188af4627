"""The skill open_drawer and close_drawer share, on the cabinet of synth/tabletop/cabinet.py.

Approach -> descend (the fingers part around the handle bar) -> close -> slide (a straight Cartesian line
along the drawer's axis, IK every 2 cm, one time-optimal spline) -> open -> retreat. Success is judged on
the physics only: where the drawer's joint ends, and the fingers let go of the bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from synth.keys import key
from synth.planners import transit
from synth.planners.cartesian import line_ik
from synth.planners.collision import Checker
from synth.planners.timing import through
from synth.tabletop.cabinet import BAR, drawer_geoms, handle_height, handle_xy
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames, Plan, PlanContext, Task
from synth.types import Drawer, Scene

PHASES = ("approach", "descend", "close", "slide", "open", "retreat")
SPEEDS = {"approach": (0.9, 0.7), "descend": (0.4, 0.4), "slide": (0.2, 0.3), "retreat": (0.6, 0.6)}


@dataclass(frozen=True)
class DrawerTask(Task):
    """Shared skill of open_drawer and close_drawer: grasp the bar from above, slide it to `goal`."""

    phases = PHASES
    grip_needed = False  # open fingers that hook the bar (or push the front) move the drawer too
    hover: float = key(0.08, "[m] the descent onto the bar starts this high above it")
    part: float = key(0.03, "[m] the fingers part this much wider than the bar while they come down")
    close_time: float = key(0.4, "[s] the fingers close on the bar over this long")
    open_time: float = key(0.3, "[s] the fingers open over this long at the end of the slide")
    step: float = key(0.02, "[m] Cartesian spacing of the IK waypoints along the slide")
    settle: float = 0.4  # [s]

    def goal(self, dr: Drawer) -> float:
        """Where the plan takes the drawer [m out]."""
        raise NotImplementedError

    def done(self, dr: Drawer, position: float) -> bool:
        """Whether the drawer's final position [m out] counts as success."""
        raise NotImplementedError

    def failure_reasons(self) -> tuple[str, ...]:
        return ("ik_failure", "no_path", "slipped", "not_released", "unstable")

    # ---------------------------------------------------------------- planning
    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        emb, ik, dr = ctx.emb, ctx.ik, scene.drawer
        assert dr is not None, f"{self.name} needs a scene with a drawer"
        lay = Layout(model, emb)
        base, _ = emb.base_pose()  # (a turned base's yaw is its IK's: pipeline.TurnedIK)
        q_home = np.array(emb.home)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies)
        width = 2 * BAR + self.part
        q0 = initial_qpos(model, emb, lay)
        q0[lay.finger_qadr] = width / 2  # the fingers stay parted this wide until they close on the bar
        checker.set_state(q0)
        z = scene.table.height + handle_height(dr)
        u = np.r_[dr.out, 0.0]
        start = np.r_[handle_xy(dr, dr.opening), z]
        end = np.r_[handle_xy(dr, self.goal(dr)), z]
        n = max(2, int(np.ceil(np.linalg.norm(end - start) / self.step)) + 1)
        line = start + np.linspace(0, 1, n)[:, None] * (end - start)
        stats: dict = {"ik_iterations_start": ik.iterations, "slide": float(self.goal(dr) - dr.opening)}
        reason = "ik_failure"
        handle = drawer_geoms(model)
        for sign in (1.0, -1.0):  # the hand is symmetric about its approach axis: try both ways round
            y = sign * u  # the fingers close along the drawer's axis
            rot = np.stack([np.cross(y, [0.0, 0.0, -1.0]), y, [0.0, 0.0, -1.0]], 1)
            found = line_ik(ik, line, rot, q_home, self.hover, base)
            if found is None:
                continue
            q_hover, path, q_up = found
            checker.margin(0.003)
            checker.allow(handle)  # the parted fingers come down around the bar
            clear = checker.segment(q_hover, path[1])
            clear = clear and all(checker.segment(a, b) for a, b in zip(path[1:-1], path[2:], strict=True))
            clear = clear and checker.segment(path[-1], q_up)
            checker.margin(0.01)
            checker.allow([])
            if not clear:
                reason = "no_path"
                continue
            approach, st_a = transit.plan(q_home, q_hover, checker, emb.lower, emb.upper, seed)
            if approach is None:
                reason = "no_path"
                continue
            stats.update(approach=st_a, hand_sign=sign)
            stats["ik_iterations"] = ik.iterations - stats.pop("ik_iterations_start")
            stats["collision_checks"] = checker.checks
            return self._timed(ctx, approach, np.stack(path[1:]), q_hover, q_up, width, dr, stats)
        return reason

    def _timed(self, ctx, approach, slide, q_hover, q_up, width, dr: Drawer, stats: dict) -> Plan:
        emb, hz = ctx.emb, ctx.control_hz
        segs: list[tuple[str, np.ndarray, np.ndarray]] = []

        def move(phase, path, grip):
            v, a = SPEEDS[phase]
            arm = through(path, emb.vmax * v, emb.amax * a, hz)
            segs.append((phase, arm, np.full(len(arm), grip)))

        def hold(phase, q, g0, g1, duration):
            n = max(2, round(duration * hz))
            k = max(1, round(0.6 * n))
            segs.append((phase, np.tile(q, (n, 1)), np.r_[np.linspace(g0, g1, k + 1)[1:], np.full(n - k, g1)]))

        move("approach", approach, width)
        move("descend", np.stack([q_hover, slide[0]]), width)
        hold("close", slide[0], width, 0.0, self.close_time)
        move("slide", slide, 0.0)
        hold("open", slide[-1], 0.0, width, self.open_time)
        move("retreat", np.stack([slide[-1], q_up]), width)
        actions = np.concatenate([np.c_[arm, grip] for _, arm, grip in segs])
        phase = np.concatenate([np.full(len(arm), PHASES.index(p)) for p, arm, _ in segs])
        check = {"opening": dr.opening, "travel": dr.travel}  # the drawer that judge rebuilds
        stats["duration_s"] = len(actions) / hz
        return Plan(actions=actions, phase=phase.astype(np.int64), check=check, stats=stats)

    # ---------------------------------------------------------------- judging
    def _verdict(self, frames: Frames, layout: Layout, dr: Drawer) -> str:
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        x = frames.qpos[:, layout.drawer_qadr]
        if not self.done(dr, float(x[-1])):
            return "slipped"
        if frames.qpos[-1, layout.finger_qadr].sum() < 2 * BAR + 0.005:
            return "not_released"  # the fingers are still shut on the bar
        return ""

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        dr = Drawer(opening=c["opening"], travel=c["travel"])
        return self._verdict(frames, layout, dr)

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        assert scene.drawer is not None
        return self._verdict(frames, layout, scene.drawer)


def drawer_phrase(scene: Scene, rng: np.random.Generator) -> str:
    """'drawer' or '<colour> drawer' (the scene has one): both single it out."""
    assert scene.drawer is not None
    return f"{scene.drawer.colour} drawer" if rng.random() < 0.5 else "drawer"
