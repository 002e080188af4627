"""push: slide one object across the table into a coloured square without grasping it.

Skill script (Push.script, synth/skill.py): approach -> descend -> push -> retreat. The fingers are closed into one
flat face (an object pushed by open pads can wedge between them and be carried off); the hand leans into the push
so the palm trails the fingertips above taller objects. The push is a straight line in Cartesian space (IK every
2 cm, joined by one time-optimal spline). Success is judged on the physics only: the object rests
upright inside the square, never lifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from synth.grasps import FINGER_TIP_BELOW_TCP
from synth.keys import key
from synth.language import refer, relation
from synth.planners.collision import Checker
from synth.planners.script import line_plan
from synth.pose import yaw_matrix
from synth.randomize import pick
from synth.registry import task
from synth.scenes.pick_place import target_phrase
from synth.skill import START, Key, Script, Segment
from synth.tabletop.bodies import object_pose, object_quat
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames, Plan, PlanContext, Task
from synth.types import Obj, Scene, Target

PHASES = ("approach", "descend", "push", "retreat")
SPEEDS = {"approach": (0.9, 0.7), "descend": (0.5, 0.5), "push": (0.18, 0.3), "retreat": (0.6, 0.6)}
PAD_HALF_X = 0.011  # [m] half the pads' extent along the hand's x (the push direction)
TRAIN = (
    "push the {obj} into the {target}",
    "push the {obj} to the {target}",
    "slide the {obj} into the {target}",
    "slide the {obj} over to the {target}",
    "shove the {obj} into the {target}",
    "nudge the {obj} into the {target}",
    "push the {obj} {rel} into the {target}",
    "without picking it up, move the {obj} to the {target}",
    "move the {obj} to the {target} by pushing it",
    "slide the {obj} {rel} to the {target}",
    "push the {obj} along the table into the {target}",
    "get the {obj} into the {target} by sliding it",
    "could you push the {obj} into the {target}",
    "push the {obj} until it is in the {target}",
    "slide the {obj} across to the {target}",
    "use the gripper to push the {obj} into the {target}",
    "keep the {obj} on the table and push it to the {target}",
    "push the {obj} onto the {target}",
    "slide the {obj} onto the {target}, please",
    "shove the {obj} {rel} over to the {target}",
)
HELD_OUT = (
    "sweep the {obj} into the {target}",
    "the {obj} should be pushed into the {target}",
    "drag the {obj} across the table to the {target} without lifting it",
    "scoot the {obj} over to the {target}",
    "I want the {obj} slid into the {target}",
    "bump the {obj} into the {target}",
)


def extent(obj: Obj, direction: np.ndarray) -> float:
    """How far the object's footprint reaches from its centre along a unit xy direction [m]."""
    if obj.shape in ("cylinder", "sphere"):
        return obj.size[0]
    if obj.shape == "mesh":
        pts = np.asarray(obj.mesh, float)[:, :2]
    else:
        sx, sy = obj.size[0], obj.size[1]
        if obj.shape == "capsule":
            sx, sy = obj.size[0] + obj.size[1], obj.size[0]
        pts = np.array([[sx, sy], [sx, -sy], [-sx, sy], [-sx, -sy]])
    return float(np.max(pts @ yaw_matrix(obj.yaw)[:2, :2].T @ direction))  # the footprint's corners turned


def push_frame(d: np.ndarray, lean: float, sign: float) -> np.ndarray:
    """Hand frame (3, 3) with x along sign * d, the fingers pointing down and leaning by `lean` [rad]
    towards d (so the palm trails the fingertips)."""
    d3 = np.array([d[0], d[1], 0.0])
    z = np.sin(lean) * d3 + np.array([0.0, 0.0, -np.cos(lean)])
    x = sign * (np.cos(lean) * d3 + np.array([0.0, 0.0, np.sin(lean)]))
    y = [z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]]  # z cross x
    return np.stack([x, y, z], 1)


@task("push")
@dataclass(frozen=True)
class Push(Task):
    """Push the object into the target square."""

    description = "slide one object into a coloured square by pushing it, without grasping"
    phases = PHASES
    templates = TRAIN
    held_out_templates = HELD_OUT
    lean: float = key(0.3, "[rad] the fingers lean into the push")
    clearance: float = key(0.008, "[m] lowest pad corner above the table while pushing")
    run_up: float = key(0.025, "[m] the push starts this far behind the object")
    hover: float = key(0.08, "[m] the descent starts this high above the push height")
    overshoot: float = key(0.0, "[m] the object's centre is pushed this far past the target's centre")
    step: float = key(0.02, "[m] Cartesian spacing of the IK waypoints along the push")
    settle: float = 0.4  # [s]
    kinematic = True
    held_width = 0.0  # [m] the fingers closed into one face, on nothing

    def scene(self) -> Scene:
        return Scene(
            objects=(Obj(name="obj0", shape="box", size=(0.025, 0.02, 0.025), xy=(0.5, 0.12)),),
            target=Target(kind="region", pos=(0.5, -0.15), size=(0.07, 0.07), colour="blue"),
            shapes=("box", "cylinder", "mesh", "file"),  # nothing that rolls away
            target_kinds=("region",),  # no lip to push over
            sweep=True,  # distractors stay out of the lane
        )

    def failure_reasons(self) -> tuple[str, ...]:
        return ("ik_failure", "no_path", "missed", "lifted", "toppled", "placed_outside", "unstable")

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        rel = relation(scene, 0)
        if "{rel}" in template and not rel:
            template = template.replace(" {rel}", "")
        return template.format(obj=refer(scene, 0), target=target_phrase(scene.target), rel=rel)

    # ---------------------------------------------------------------- the skill script
    def script(self) -> Script:
        """approach -> descend -> push -> retreat with the fingers closed into one flat face, carrying nothing: the
        push a Cartesian line from behind the object to where it sits in the target (synth/skill.py)."""
        v, touch = SPEEDS, ("object", "place")  # the pads push the object over the target
        keys = (
            Key("hover", "from", up=self.hover),
            Key("behind", "from"),
            Key("pushed", "to"),
            Key("up", "to", up=self.hover),
        )
        return Script(
            keys,
            (
                Segment("approach", START, "hover", "transit", v["approach"], "closed"),
                Segment("descend", "hover", "behind", "straight", v["descend"], "closed", margin=0.003),
                Segment(
                    "push", "behind", "pushed", "line", v["push"], "closed", touch=touch, margin=0.003, step=self.step
                ),
                Segment("retreat", "pushed", "up", "straight", v["retreat"], "closed", touch=touch, margin=0.003),
            ),
            flip=1.0,
            carries="nothing",
        )

    def _line(self, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The push: the object's centre (3,) [m] where it rests, the TCP's start and end (3,) [m, world] and the
        unit push direction d (2,). The pads' front edge starts `run_up` behind the object and stops where the
        object's centre is `overshoot` past the target's centre."""
        centre = object_pose(scene.objects[0], scene.table.height)[:3]
        goal = np.asarray(scene.target.pos, float)
        d = goal - centre[:2]
        d /= float(np.linalg.norm(d))
        c, s = np.cos(self.lean), np.sin(self.lean)
        lead = PAD_HALF_X * c + FINGER_TIP_BELOW_TCP * s  # the pads' front edge ahead of the TCP
        z = scene.table.height + self.clearance + FINGER_TIP_BELOW_TCP * c + PAD_HALF_X * s  # TCP height
        back = extent(scene.objects[0], -d) + lead
        start, end = centre[:2] - d * (back + self.run_up), goal + d * self.overshoot - d * back
        return centre, np.array([start[0], start[1], z]), np.array([end[0], end[1], z]), d

    def hand_line(self, scene: Scene) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The push's TCP line and the hand's rotations along it: the hand is symmetric about z, both ways round."""
        _, start, end, d = self._line(scene)
        return start, end, [push_frame(d, self.lean, sign) for sign in (1.0, -1.0)]

    def line_check(self, scene: Scene) -> tuple[dict, dict]:
        centre = object_pose(scene.objects[0], scene.table.height)[:3]
        tg = scene.target
        check = {
            "start_xy": [float(centre[0]), float(centre[1])],
            "z0": float(centre[2]),
            "target_xy": list(tg.pos),
            "target_half": list(tg.size),
        }
        dist = float(np.linalg.norm(np.asarray(tg.pos, float) - centre[:2]))
        return check, {"push_distance": dist, "grip_width": self.held_width}

    def follow(self, scenes: list[Scene], ep: np.ndarray, travel: np.ndarray) -> np.ndarray:
        """The pushed object: still until the pads' front edge, `run_up` behind it at the start, reaches it, then
        ahead of the pads along the push direction, upright, its yaw kept (no physics: no slip, no turn)."""
        f = np.zeros((len(scenes), 9))  # the object's centre, the push direction, its quaternion
        for k, sc in enumerate(scenes):
            o = sc.objects[0]
            f[k, :3] = o.xy[0], o.xy[1], sc.table.height + o.half_height  # where it rests (object_pose)
            f[k, 3:5] = np.asarray(sc.target.pos) - f[k, :2]
            f[k, 5:] = object_quat(o)
        f[:, 3:5] /= np.linalg.norm(f[:, 3:5], axis=1, keepdims=True)
        f = f[ep]
        pos = f[:, :3] + np.c_[f[:, 3:5], np.zeros(len(ep))] * np.maximum(0.0, travel - self.run_up)[:, None]
        return np.c_[pos, f[:, 5:]]

    def kinematic_verdict(self, scenes: list[Scene], travel: np.ndarray) -> list[str]:
        """The judge's test on the object at rest where the push left it (never lifted: it slides on the table)."""
        final = self.follow(scenes, np.arange(len(scenes)), travel)
        out = []
        for sc, p in zip(scenes, final, strict=True):
            c = self.line_check(sc)[0]
            out.append(
                self._verdict(p[None, :3], np.zeros(1), c["z0"], c["start_xy"], c["target_xy"], c["target_half"])
            )
        return out

    # ---------------------------------------------------------------- planning
    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        emb = ctx.emb
        lay = Layout(model, emb)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies)
        checker.set_state(initial_qpos(model, emb, lay))
        touch = {"object": [int(lay.obj_geom[0])], "table": [lay.table_geom], "place": list(lay.target_geoms)}
        return line_plan(self, ctx, checker, touch, scene, seed, PHASES)

    # ---------------------------------------------------------------- judging
    def _verdict(self, pos: np.ndarray, speed: np.ndarray, z0: float, start, target_xy, target_half) -> str:
        """'' if at the last frame the object rests upright inside the square and it was never lifted."""
        if not np.isfinite(pos).all():
            return "unstable"
        if pos[:, 2].max() > z0 + 0.03:
            return "lifted"
        moved = np.linalg.norm(pos[-1, :2] - np.asarray(start))
        if moved < 0.3 * np.linalg.norm(np.asarray(target_xy) - np.asarray(start)):
            return "missed"
        if abs(pos[-1, 2] - z0) > 0.012:
            return "toppled"
        inside = np.all(np.abs(pos[-1, :2] - np.asarray(target_xy)) <= np.asarray(target_half))
        return "" if inside and speed[-1] < 0.05 else "placed_outside"

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        a, d = int(layout.obj_qadr[0]), int(layout.obj_dadr[0])
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        speed = np.linalg.norm(frames.qvel[:, d : d + 3], axis=1)
        return self._verdict(frames.qpos[:, a : a + 3], speed, c["z0"], c["start_xy"], c["target_xy"], c["target_half"])

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """The plan-free predicate (for policies): the same test from the first frame's object pose."""
        a, d = int(layout.obj_qadr[0]), int(layout.obj_dadr[0])
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        pos = frames.qpos[:, a : a + 3]
        speed = np.linalg.norm(frames.qvel[:, d : d + 3], axis=1)
        tg = scene.target
        return self._verdict(pos, speed, float(pos[0, 2]), pos[0, :2], tg.pos, tg.size[:2])
