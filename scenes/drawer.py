"""The skill open_drawer and close_drawer share, on the cabinet of synth/tabletop/cabinet.py.

Skill script (DrawerTask.script, synth/skill.py): approach -> descend (the fingers part around the handle bar) ->
close -> slide (a straight Cartesian line along the drawer's axis, IK every 2 cm, one time-optimal spline) -> open
-> retreat. Success is judged on
the physics only: where the drawer's joint ends, and the fingers let go of the bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from synth.batch_planner.planner import quat_from_mat
from synth.keys import key
from synth.planners.collision import Checker
from synth.planners.script import line_plan
from synth.pose import yaw_matrix
from synth.skill import START, Key, Script, Segment
from synth.tabletop.cabinet import BAR, drawer_geoms, drawer_inertial, handle_height, handle_xy
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
    kinematic = True
    held_width = 2 * BAR  # [m] the fingers closed on the bar
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

    # ---------------------------------------------------------------- the skill script
    def script(self) -> Script:
        """approach -> descend -> close -> slide -> open -> retreat: the fingers parted `part` wider than the bar
        come down around it, close, and the hand slides along the drawer's axis (a Cartesian line) while the
        drawer's joint follows it (synth/skill.py)."""
        v, bar = SPEEDS, ("object",)  # the drawer's geoms: the parted fingers come down around its bar
        keys = (
            Key("hover", "from", up=self.hover),
            Key("handle", "from"),
            Key("slid", "to"),
            Key("up", "to", up=self.hover),
        )
        return Script(
            keys,
            (
                Segment("approach", START, "hover", "transit", v["approach"]),
                Segment("descend", "hover", "handle", "straight", v["descend"], touch=bar, margin=0.003),
                Segment("close", "handle", "handle", "hold", grip="closed", duration=self.close_time, ramp=0.6),
                Segment(
                    "slide", "handle", "slid", "line", v["slide"], "closed", touch=bar, margin=0.003, step=self.step
                ),
                Segment("open", "slid", "slid", "hold", grip="open", duration=self.open_time, ramp=0.6),
                Segment("retreat", "slid", "up", "straight", v["retreat"], touch=bar, margin=0.003),
            ),
            flip=1.0,
            carries="articulation",
            open_width=2 * BAR + self.part,
        )

    def hand_line(self, scene: Scene) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The slide: the TCP on the bar with the drawer at its opening, then at the goal; the hand's fingers
        down and closing along the drawer's axis, both ways round (the hand is symmetric about its approach axis)."""
        dr = scene.drawer
        assert dr is not None, f"{self.name} needs a scene with a drawer"
        z = scene.table.height + handle_height(dr)
        u = np.r_[dr.out, 0.0]
        rots = [np.stack([[-y[1], y[0], 0.0], y, [0.0, 0.0, -1.0]], 1) for y in (u, -u)]  # x = y cross -z
        return np.r_[handle_xy(dr, dr.opening), z], np.r_[handle_xy(dr, self.goal(dr)), z], rots

    def line_check(self, scene: Scene) -> tuple[dict, dict]:
        dr = scene.drawer
        assert dr is not None, f"{self.name} needs a scene with a drawer"
        return {"opening": dr.opening, "travel": dr.travel}, {"slide": float(self.goal(dr) - dr.opening)}

    def _joint(self, scenes: list[Scene], travel: np.ndarray, ep: np.ndarray | None = None) -> np.ndarray:
        """(F,) [m out] the drawer's joint of scenes[ep] (F,) (default: each scene once) once the hand has advanced
        travel (F,) [m] along the slide."""
        drs = [sc.drawer for sc in scenes if sc.drawer is not None]
        f = np.array([(np.sign(self.goal(dr) - dr.opening), dr.opening, dr.travel) for dr in drs]).reshape(-1, 3)
        f = f if ep is None else f[ep]
        return np.clip(f[:, 1] + f[:, 0] * travel, 0.0, f[:, 2])

    def follow(self, scenes: list[Scene], ep: np.ndarray, travel: np.ndarray) -> np.ndarray:
        """The drawer body's inertial frame (what physics mode's synth.object_pose follows): the drawer's joint
        follows the hand along its axis, within its travel."""
        drs = [sc.drawer for sc in scenes if sc.drawer is not None]
        com, R = drawer_inertial(drs)
        f = np.array(
            [(dr.pos[0], dr.pos[1], sc.table.height + dr.size[2], dr.yaw) for dr, sc in zip(drs, scenes, strict=True)]
        )
        turn = np.array([yaw_matrix(y) for y in f[:, 3]])  # (E, 3, 3)
        closed = f[:, :3] + np.einsum("eij,ej->ei", turn, com)  # the centre of mass, the drawer closed
        quat = quat_from_mat(turn @ R)
        x = self._joint(scenes, travel, ep)
        out = np.c_[-np.cos(f[:, 3]), -np.sin(f[:, 3]), np.zeros(len(f))]  # the drawer's out direction
        return np.c_[closed[ep] + out[ep] * x[:, None], quat[ep]]

    def kinematic_verdict(self, scenes: list[Scene], travel: np.ndarray) -> list[str]:
        """'' where the drawer's joint ends where the judge accepts it, else "slipped" (the plan opens the hand)."""
        x = self._joint(scenes, travel)
        return [
            "" if self.done(sc.drawer, float(v)) else "slipped" for sc, v in zip(scenes, x, strict=True) if sc.drawer
        ]

    # ---------------------------------------------------------------- planning
    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        emb = ctx.emb
        lay = Layout(model, emb)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies)
        script = self.script()
        q0 = initial_qpos(model, emb, lay)
        q0[lay.finger_qadr] = script.open_width / 2  # the fingers stay parted this wide until they close on the bar
        checker.set_state(q0)
        touch = {"object": drawer_geoms(model), "table": [lay.table_geom], "place": []}
        return line_plan(self, ctx, checker, touch, scene, seed, PHASES)

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
