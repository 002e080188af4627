"""bimanual_lift: two arms lift a long bar together by its ends and hold it level (a two-arm embodiment: aloha).

Skill script, both arms at once: approach -> pre_grasp -> grasp -> close -> lift -> hold. Each hand takes the
bar top-down across it, `inset` from the end nearer its own base; the key poses are solved by IK per arm in
that arm's base frame; the approach is planned by OMPL in the joint space of both arms together, checked on
the scene's MuJoCo model against the world and arm against arm; the lift is a vertical line for both hands,
solved at `steps` heights and timed as one path (toppra), so that the hands rise together and the bar stays
level. Success is judged on the physics only (see `held`).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from synth.embodiment import Embodiment
from synth.grasps import FINGER_TIP_BELOW_TCP, TABLE_CLEARANCE, reach
from synth.keys import key
from synth.language import refer
from synth.planners.collision import Checker
from synth.planners.script import clear, pair_configurations, walk
from synth.planners.timing import through
from synth.randomize import pick
from synth.registry import task
from synth.skill import START, Key, Script, Segment
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames, Plan, PlanContext, Task
from synth.types import Obj, Scene, Target

PHASES = ("approach", "pre_grasp", "grasp", "close", "lift", "hold")
SPEEDS = {"approach": (0.8, 0.6), "pre_grasp": (0.6, 0.6), "grasp": (0.4, 0.5), "lift": (0.35, 0.4)}
BAR = ((0.11, 0.15), (0.014, 0.02), (0.015, 0.022))  # half length, half width, half height ranges [m]
REGION = (0.4, 0.6, -0.06, 0.06)  # [m] the bar's centre: between the two arms (aloha's stand at y = +-0.45)
TRAIN = (
    "lift the {obj} with both hands",
    "pick up the {obj} with both arms",
    "use both arms to lift the {obj}",
    "grab both ends of the {obj} and lift it",
    "lift the {obj} off the table with two hands",
    "hold the {obj} up with both grippers",
    "take the {obj} by its ends and raise it",
    "raise the {obj} with both arms",
    "pick the {obj} up by both ends",
    "lift the {obj} and hold it level",
    "with both hands, lift the {obj}",
    "grasp the {obj} at both ends and lift it up",
    "lift the {obj} up and keep it level",
    "hold the {obj} level above the table",
    "get both hands on the {obj} and lift it",
    "pick up the {obj} using both hands",
    "lift the {obj} together with both arms",
    "raise the {obj} off the table and hold it",
    "could you lift the {obj} with both hands",
    "carry the {obj} up with both arms and hold it there",
)
HELD_OUT = (
    "hoist the {obj} with two hands",
    "I need the {obj} lifted with both arms",
    "both arms: lift the {obj}",
    "elevate the {obj}, one hand at each end",
    "bring the {obj} up off the table, holding each end",
    "the {obj} should be held up by both grippers",
)


@task("bimanual_lift")
@dataclass(frozen=True)
class BimanualLift(Task):
    """Lift a long bar with two arms, one hand at each end, and hold it level."""

    description = "two arms lift a long bar by its ends and hold it level (two-arm embodiments: aloha)"
    phases = PHASES
    templates = TRAIN
    held_out_templates = HELD_OUT
    arms = 2
    kinematic = True
    hover: float = key(0.10, "[m] above the grasp: where the approach ends")
    pre_grasp: float = key(0.05, "[m] above the grasp: where the slow insertion starts; < hover")
    insets: tuple[float, ...] = key((0.035, 0.06), "[m] grasp points from the bar's ends, tried in order")
    lift: float = key(0.15, "[m] both hands straight up")
    steps: int = key(5, "IK points along the lift; >= 1")
    hold: float = key(1.0, "[s] the bar is held up this long (then settle more before judging)")
    close_time: float = key(0.4, "[s] the fingers close over this long")
    max_tilt: float = key(10.0, "[deg] success: the bar's long axis stays within this of the horizontal while it is up")
    speed: float = key(1.0, "scale on every phase's velocity and acceleration (capped at the arms' limits); > 0")
    settle: float = 0.5  # [s]

    def scene(self) -> Scene:
        bar = Obj(name="obj0", shape="box", size=(0.13, 0.017, 0.018), xy=(0.5, 0.0), yaw=np.pi / 2)
        return Scene(
            objects=(bar,),
            target=Target(kind="none"),
            target_kinds=("none",),
            shapes=("box",),
            sizes=BAR,
            region=REGION,
        )

    def failure_reasons(self) -> tuple[str, ...]:
        return ("ik_failure", "no_path", "grasp_slip", "dropped", "tilted", "not_held", "unstable")

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        return template.format(obj=refer(scene, 0))

    # ---------------------------------------------------------------- the skill script
    def script(self) -> Script:
        """approach -> pre_grasp -> grasp -> close -> lift -> hold, as both modes run it (synth/skill.py): every arm
        at once, each from its own grasp (grasp_poses); the lift a vertical line solved at `steps` heights."""
        v = {p: (min(1.0, f * self.speed), min(1.0, a * self.speed)) for p, (f, a) in SPEEDS.items()}
        ups = [self.lift * k / self.steps for k in range(1, self.steps + 1)]
        keys = (
            Key("hover", "grasp", up=self.hover),
            Key("pre", "grasp", up=self.pre_grasp),
            Key("grasp", "grasp"),
            *(Key(f"lift{k}", "grasp", up=u) for k, u in enumerate(ups, 1)),
        )
        into = ("object", "table")  # the fingers close in on the bar, just above the table
        top = f"lift{self.steps}"
        return Script(
            keys,
            (
                Segment("approach", START, "hover", "transit", v["approach"]),
                Segment("pre_grasp", "hover", "pre", "straight", v["pre_grasp"], touch=into, margin=0.003),
                Segment("grasp", "pre", "grasp", "straight", v["grasp"], touch=into, margin=0.003),
                Segment("close", "grasp", "grasp", "hold", grip="closed", duration=self.close_time, ramp=0.6),
                Segment(
                    "lift",
                    "grasp",
                    top,
                    "straight",
                    v["lift"],
                    "closed",
                    touch=("table",),
                    via=tuple(f"lift{k}" for k in range(1, self.steps)),
                ),
                Segment("hold", top, top, "hold", grip="closed", duration=self.hold, ramp=0.5),
            ),
        )

    # ---------------------------------------------------------------- planning
    def grasp_poses(
        self, bar: Obj, table_height: float, bases: list[np.ndarray], emb: Embodiment, inset: float, swap: bool
    ) -> list[tuple]:
        """Per arm, the TCP's grasp pose (position (3,) [m], rotation (3, 3)) of one bar: see grasps."""
        pos, rot = self.grasps([bar], np.array([table_height]), bases, emb, inset, swap)
        return [(pos[0, a], rot[0, a]) for a in range(len(bases))]

    def grasps(
        self, bars: list[Obj], table: np.ndarray, bases: list[np.ndarray], emb: Embodiment, inset: float, swap: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per bar and arm, the TCP's grasp pose in the world: positions (W, A, 3) [m], rotations (W, A, 3, 3)
        (columns: the hand's x, closing direction y, approach z pointing down), `inset` [m] from the end nearer
        the first arm's base (`swap`: the other end), and from the other end for the other arm; table (W,) [m]
        the table heights, bases: each arm's base position (3,) [m]. The fingers reach 60% down the bar's sides,
        never so far that the palm would touch it, nor the fingertips the table."""
        yaw = np.array([b.yaw for b in bars])
        c, s = np.cos(yaw), np.sin(yaw)
        xy = np.array([b.xy for b in bars], float).reshape(-1, 2)
        reach_out = np.array([b.size[0] for b in bars]) - inset
        half = np.array([b.half_height for b in bars])
        u = np.stack([c, s], 1)  # the bar's long axis in the world
        ends = [xy + (sign * reach_out)[:, None] * u for sign in (1.0, -1.0)]
        d = [((e - bases[0][:2]) ** 2).sum(1) for e in ends]
        flip = ((d[0] < d[1]) == swap)[:, None]  # the first arm takes the other end
        xys = [np.where(flip, ends[1], ends[0]), np.where(flip, ends[0], ends[1])]
        z_down = np.broadcast_to([0.0, 0.0, -1.0], (len(bars), 3))
        pos, rot = [], []
        for base, m, at in zip(bases, emb.mounts, xys, strict=True):
            depth = np.minimum(0.6 * 2 * half, reach(m.body.gripper)[0])
            z = np.maximum(table + 2 * half - depth, table + FINGER_TIP_BELOW_TCP + TABLE_CLEARANCE)
            y = np.stack([-s, c, np.zeros_like(c)], 1)  # closing across the bar
            away = (np.cross(y, z_down)[:, :2] * (at - base[:2])).sum(1) < 0  # the hand's x faces away from its base
            y = np.where(away[:, None], -y, y)
            rot.append(np.stack([np.cross(y, z_down), y, z_down], 2))
            pos.append(np.c_[at, z])
        return np.stack(pos, 1), np.stack(rot, 1)

    def options(self) -> list[tuple[float, bool]]:
        """The grasps tried, in order: (inset [m], swap) (see grasp_poses)."""
        return [(inset, swap) for inset in self.insets for swap in (False, True)]

    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        emb, script = ctx.emb, self.script()
        lay = Layout(model, emb)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies, arms=[a.bodies for a in lay.arms])
        checker.set_state(initial_qpos(model, emb, lay))
        bar, geom, qadr = scene.objects[0], int(lay.obj_geom[0]), int(lay.obj_qadr[0])
        resting = checker.data.qpos[qadr : qadr + 7].copy()
        touch = {"object": [geom], "table": [lay.table_geom], "place": []}
        segs = script.segments
        close = next(k for k, s in enumerate(segs) if s.motion == "hold")
        into = [k for k in range(close) if segs[k].motion == "straight"]  # checked before the approach is planned
        homes = [m.body.home for m in emb.mounts]
        iters = sum(ik.iterations for ik in ctx.iks)
        reason = "ik_failure"
        for inset, swap in self.options():
            poses = self.grasp_poses(bar, scene.table.height, [a.base for a in lay.arms], emb, inset, swap)
            q = pair_configurations(ctx.iks, script, poses, lay.arms, homes)
            if q is None:
                continue
            at = {**q, START: np.array(emb.home)}
            reason = "no_path"
            if not all(clear(checker, segs[k], at, touch) for k in into):
                continue
            checker.allow([])
            paths, st = walk(checker, script, at, q[segs[0].end], touch, (geom, qadr, lay.hand_body), emb, seed, into)
            checker.detach()
            checker.data.qpos[qadr : qadr + 7] = resting
            checker.allow([])
            if paths is None:
                continue
            stats = {
                "inset": inset,
                "swap": swap,
                **st,
                "ik_iterations": sum(ik.iterations for ik in ctx.iks) - iters,
                "collision_checks": checker.checks,
            }
            return self._timed(ctx, at, paths, bar, stats)
        return reason

    def _timed(self, ctx: PlanContext, q: dict, paths: dict, bar: Obj, stats: dict) -> Plan:
        """The script's segments timed (toppra) at the control rate, every arm together: q the key configurations
        {name: (dof of all arms,)}, paths the transits' waypoints {phase: (K, dof of all arms)}."""
        emb, hz, script = ctx.emb, ctx.control_hz, self.script()
        open_w = np.array([m.body.gripper.stroke for m in emb.mounts])
        width = {"open": open_w, "closed": np.zeros_like(open_w)}
        segs: list[tuple[str, np.ndarray, np.ndarray]] = []  # (phase, arms (K, dof), grippers (K, arms))
        for s, (g0, g1) in zip(script.segments, script.grips(), strict=True):
            if s.motion == "hold":
                n = max(2, round(s.duration * hz))
                k = max(1, round(s.ramp * n))
                frac = np.r_[np.linspace(0.0, 1.0, k + 1)[1:], np.ones(n - k)][:, None]
                segs.append((s.phase, np.tile(q[s.start], (n, 1)), width[g0] + frac * (width[g1] - width[g0])))
                continue
            path = paths[s.phase] if s.motion == "transit" else [q[k] for k in s.path]
            arm = through(np.asarray(path), emb.vmax * s.speed[0], emb.amax * s.speed[1], hz)
            segs.append((s.phase, arm, np.tile(width[s.grip], (len(arm), 1))))
        arm = np.concatenate([s[1] for s in segs])
        grip = np.concatenate([s[2] for s in segs])
        ends = np.cumsum([m.body.dof for m in emb.mounts])[:-1]
        actions = np.concatenate(
            [np.c_[a, g] for a, g in zip(np.split(arm, ends, axis=1), grip.T, strict=True)], axis=1
        )
        phase = np.concatenate([np.full(len(s[1]), PHASES.index(s[0])) for s in segs]).astype(np.int64)
        check = {"width": 2 * bar.size[1]}  # [m] what each hand closes on (judge: held)
        stats["duration_s"] = len(actions) / hz
        return Plan(actions=actions, phase=phase, check=check, stats=stats)

    # ---------------------------------------------------------------- judging
    def held(self, frames: Frames, layout: Layout, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame (F,): is the bar up, level and held by every hand (see lifted)?"""
        z, axis_z, grips = self.bar_path(frames, layout)
        return self.states(z, axis_z, grips, width)

    def bar_path(self, frames: Frames, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: the bar's centre height z (F,) [m], the world z of its long axis axis_z (F,), and each
        gripper's opening grips (F, arms) [m]."""
        a = int(layout.obj_qadr[0])
        z = frames.qpos[:, a + 2]
        w, x, y, zq = frames.qpos[:, a + 3 : a + 7].T
        axis_z = 2 * (x * zq - w * y)  # world z of the bar's long (local x) axis
        grips = np.stack([frames.qpos[:, arm.finger_qadr].sum(1) for arm in layout.arms], 1)
        return z, axis_z, grips

    def states(
        self, z: np.ndarray, axis_z: np.ndarray, grips: np.ndarray, width: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame (F,) of a bar path (see bar_path): is the bar up (its centre >= half the lift above where it
        lay at the first frame), level (its long axis within max_tilt of the horizontal), and held by every hand
        (each gripper's fingers stopped by something as wide as the bar, `width` [m]: between half of it and it +
        6 mm)?"""
        up = z >= z[0] + 0.5 * self.lift
        level = np.abs(axis_z) <= np.sin(np.radians(self.max_tilt))
        holding = np.all((grips >= 0.5 * width) & (grips <= width + 0.006), axis=1)
        return up, level, holding

    def lifted(self, z: np.ndarray, axis_z: np.ndarray, grips: np.ndarray, width: float) -> str:
        """'' if the bar of a bar path (see bar_path), once up, stays up, level and held by both hands to the last
        frame, else the reason: both modes' verdict (the kinematic mode's from the planned motion)."""
        if not (np.isfinite(z).all() and np.isfinite(axis_z).all()):
            return "unstable"
        up, level, holding = self.states(z, axis_z, grips, width)
        if not up.any():
            return "grasp_slip"
        t0 = int(np.argmax(up))
        if not up[t0:].all():
            return "dropped"
        if not level[t0:].all():
            return "tilted"
        if not holding[t0:].all():
            return "not_held"
        return ""

    def _verdict(self, frames: Frames, layout: Layout, width: float) -> str:
        """'' if the bar, once up, stays up, level and held by both hands to the last frame, else the reason."""
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        return self.lifted(*self.bar_path(frames, layout), width)

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        """Up, level and held by both hands from when it came up to the end: the hold phase and the settle time."""
        return self._verdict(frames, layout, plan.check["width"])

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """The same predicate without a plan (for policies)."""
        return self._verdict(frames, layout, 2 * scene.objects[0].size[1])
