"""stack: build a tower of `levels` blocks (2 or 3): objects[levels-1] stays, each block above it is
picked up and set on the one below, from the bottom up.

Each pick-and-place is pick_place's skill script, with the block below as the place target: the block is
released just above that block's top face, and every other block is an obstacle. Success is judged on
the physics only: each block was lifted, each rests on the one below (inside its outline, at contact
height), the gripper is open, and the bottom block still stands where it stood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.language import refer
from synth.randomize import pick
from synth.registry import task
from synth.scenes.pick_place import PickPlace
from synth.skill import Placement
from synth.tabletop.compiler import Layout
from synth.task import Frames, Plan
from synth.types import Obj, Scene, Target

TRAIN = (
    "stack the {obj} on the {base}",
    "put the {obj} on top of the {base}",
    "place the {obj} on the {base}",
    "pick up the {obj} and put it on the {base}",
    "set the {obj} down on the {base}",
    "stack the {obj} on top of the {base}",
    "lift the {obj} and place it on the {base}",
    "move the {obj} onto the {base}",
    "put the {obj} onto the {base}",
    "grab the {obj} and stack it on the {base}",
    "the {obj} goes on top of the {base}",
    "build a tower: the {obj} on the {base}",
    "could you stack the {obj} on the {base}",
    "pick the {obj} up and set it on the {base}",
    "place the {obj} on top of the {base}, please",
    "stack the {obj} onto the {base}",
    "rest the {obj} on the {base}",
    "take the {obj} and put it on the {base}",
    "put the {obj} on the {base} so it sits on top",
    "carry the {obj} over and stack it on the {base}",
)
HELD_OUT = (
    "I want the {obj} sitting on the {base}",
    "pile the {obj} on the {base}",
    "the {base} should end up under the {obj}",
    "balance the {obj} on top of the {base}",
    "make a stack with the {obj} above the {base}",
    "load the {obj} onto the {base}",
)
TRAIN3 = (
    "stack the {mid} on the {base}, then the {obj} on top",
    "build a tower: the {base} at the bottom, then the {mid}, then the {obj}",
    "put the {mid} on the {base} and the {obj} on the {mid}",
    "stack the three blocks: {base} below, {mid} in the middle, {obj} on top",
    "place the {mid} onto the {base}, then put the {obj} on top of it",
    "make a tower of three with the {obj} at the top and the {base} at the bottom, the {mid} between",
    "first put the {mid} on the {base}, then stack the {obj} on the {mid}",
    "build a three block tower on the {base}: the {mid} first, the {obj} last",
    "set the {mid} on the {base}, then set the {obj} on the {mid}",
    "stack the {mid} and then the {obj} on the {base}",
    "could you stack the {mid} on the {base} and the {obj} on top of that",
    "pile the {mid} onto the {base} and finish with the {obj}",
    "put the {mid} on top of the {base}, then the {obj} on top of the {mid}",
    "the {base} stays; stack the {mid} on it and the {obj} on the {mid}",
    "make a stack: {base}, {mid}, {obj}, from the bottom up",
    "lift the {mid} onto the {base}, then lift the {obj} onto the {mid}",
    "stack all three blocks with the {obj} highest and the {base} lowest",
    "build a tower from the {base}, the {mid} and the {obj}, in that order",
    "put the {mid} on the {base}; then the {obj} goes on the {mid}",
    "three high, please: the {mid} on the {base}, then the {obj}",
)
HELD_OUT3 = (
    "I want a tower with the {obj} on the {mid} on the {base}",
    "balance the {mid} on the {base} and the {obj} on the {mid}",
    "the {base} should end up under the {mid}, and the {mid} under the {obj}",
    "make a three block stack topped by the {obj}, with the {mid} under it and the {base} at the base",
    "load the {mid} onto the {base}, then the {obj} onto the {mid}",
    "assemble a tower: {base} first, {mid} second, {obj} third",
)
FLAT = ("box",)  # faces a block can rest on and be grasped by: the lower block needs a flat top


def on_top(
    pos: np.ndarray, base_pos: np.ndarray, base_quat: np.ndarray, base_half: np.ndarray, height: float, tol: float
) -> np.ndarray:
    """(F,) frames where a body centred at `pos` (F, 3) sits on the base (F, 3) / (F, 4) wxyz quats: its
    centre inside the base's top outline (half extents (2,) [m] in the base frame) and `height` [m]
    above the base's centre within `tol`."""
    w, x, y, z = base_quat.T
    # the base's x axis and y axis in the world (rotation matrix columns 0 and 1)
    ax = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], 1)
    ay = np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], 1)
    up = np.cross(ax, ay)
    d = pos - base_pos
    inside = (np.abs((d * ax).sum(1)) <= base_half[0]) & (np.abs((d * ay).sum(1)) <= base_half[1])
    return inside & (np.abs((d * up).sum(1) - height) <= tol) & (up[:, 2] > 0.97)


@task("stack")
@dataclass(frozen=True)
class Stack(PickPlace):
    """Pick the upper block up and set it on the lower block."""

    description = "stack one block on another, or build a tower of three (task.levels=3)"
    templates = TRAIN
    held_out_templates = HELD_OUT
    physics_step = 0.002  # [s] pick_place's larger step not yet measured on >= 2,000 attempts here
    kinematic = True
    above_place: float = 0.06
    release_clearance: float = 0.006
    levels: int = key(2, "blocks in the tower: 2 or 3")
    rest_tol: float = key(0.01, "[m] tolerance on a block's height above the centre of the one below it")
    base_shift: float = key(0.03, "[m] the bottom block may be nudged this far and still count as standing")

    def __post_init__(self) -> None:
        if self.levels not in (2, 3):
            raise ConfigError(f"task.levels={self.levels}: give 2 or 3 blocks")
        if self.levels == 3:  # the instruction names all three blocks
            object.__setattr__(self, "templates", TRAIN3)
            object.__setattr__(self, "held_out_templates", HELD_OUT3)

    def scene(self) -> Scene:
        nominal = (
            Obj(name="obj0", shape="box", size=(0.02, 0.02, 0.02), xy=(0.5, 0.12)),
            Obj(name="obj1", shape="box", size=(0.03, 0.03, 0.02), colour="blue", xy=(0.5, -0.12)),
            Obj(name="obj2", shape="box", size=(0.03, 0.03, 0.02), colour="green", xy=(0.45, 0.0)),
        )
        return Scene(
            objects=nominal[: self.levels],
            target=Target(kind="none"),
            target_kinds=("none",),
            shapes=FLAT,
            task_objects=self.levels,
        )

    def failure_reasons(self) -> tuple[str, ...]:
        return (
            "ik_failure",
            "no_path",
            "miss_held",
            "grasp_slip",
            "dropped",
            "knocked_over",
            "placed_outside",
            "not_released",
        )

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        if self.levels == 3:
            return template.format(obj=refer(scene, 0), mid=refer(scene, 1), base=refer(scene, 2))
        return template.format(obj=refer(scene, 0), base=refer(scene, 1))

    # ------------------------------------------------------------ the place target is the block below
    def placements(self, scene: Scene) -> list[Placement]:
        """Block levels-2 onto the bottom one, ..., block 0 onto block 1; all onto the bottom block's x, y."""
        bottom = scene.objects[self.levels - 1]
        out, top = [], scene.table.height + 2 * bottom.half_height  # the tower's top face [m]
        for i in range(self.levels - 2, -1, -1):
            obj = scene.objects[i]
            rest = top + obj.half_height
            out.append(Placement(i, bottom.xy, rest + self.release_clearance, rest, target=None, on=(i + 1,)))
            top += 2 * obj.half_height
        return out

    def placed(self, scenes: list[Scene], centre: np.ndarray) -> np.ndarray:
        """(E,) whether each block placed, at rest with its centre at centre (E, levels - 1, 3) [m] in the order of
        placements(), sits on the block below it (the bottom one where it stood, the others where they were set
        down): inside its top outline, at contact height within rest_tol (the kinematic mode's verdict)."""
        ok = np.ones(len(scenes), bool)
        for m in range(self.levels - 1):
            up, lo = self.levels - 2 - m, self.levels - 1 - m  # objects[up] goes on objects[lo]
            f = np.array(
                [
                    (*b.xy, b.yaw, *b.size[:2], sc.table.height, b.half_height, sc.objects[up].half_height)
                    for sc, b in ((sc, sc.objects[lo]) for sc in scenes)
                ]
            ).reshape(-1, 8)
            if m:  # the lower block where it was set down (the hand keeps its yaw)
                f[:, :2], f[:, 5] = centre[:, m - 1, :2], centre[:, m - 1, 2] - f[:, 6]
            c, s = np.cos(f[:, 2]), np.sin(f[:, 2])
            d = centre[:, m, :2] - f[:, :2]
            inside = (np.abs(d[:, 0] * c + d[:, 1] * s) <= f[:, 3]) & (np.abs(d[:, 1] * c - d[:, 0] * s) <= f[:, 4])
            height = centre[:, m, 2] - (f[:, 5] + f[:, 6])  # above the lower block's centre
            ok &= inside & (np.abs(height - (f[:, 6] + f[:, 7])) <= self.rest_tol)
        return ok

    def place_check(self, scene: Scene) -> dict:
        pairs = [
            {
                "upper": i,
                "lower": i + 1,
                "half": [scene.objects[i + 1].size[0], scene.objects[i + 1].size[1]],
                "height": scene.objects[i + 1].half_height + scene.objects[i].half_height,
            }
            for i in range(self.levels - 1)
        ]
        return {"pairs": pairs, "base_xy": list(scene.objects[self.levels - 1].xy)}

    # ------------------------------------------------------------ judging
    def _stacked(self, c: dict, frames: Frames, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """(F,) frames where every block rests on the one below it, all still; (F,) where the bottom block
        stands near where it started."""
        q, v = frames.qpos, frames.qvel
        ok = np.ones(len(q), bool)
        for pair in c["pairs"]:
            a, b = int(layout.obj_qadr[pair["upper"]]), int(layout.obj_qadr[pair["lower"]])
            ok &= on_top(
                q[:, a : a + 3],
                q[:, b : b + 3],
                q[:, b + 3 : b + 7],
                np.asarray(pair["half"]),
                pair["height"],
                self.rest_tol,
            )
        for i in range(len(c["pairs"]) + 1):
            d = int(layout.obj_dadr[i])
            ok &= np.linalg.norm(v[:, d : d + 3], axis=1) < 0.05
        b = int(layout.obj_qadr[len(c["pairs"])])
        standing = np.linalg.norm(q[:, b : b + 2] - np.asarray(c["base_xy"]), axis=1) <= self.base_shift
        standing &= np.abs(q[:, b + 2] - q[0, b + 2]) < 0.005
        return ok, standing

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        why = self.carried(c, frames, layout)
        if why:
            return why
        rests, standing = self._stacked(c, frames, layout)
        if not standing[-1]:
            return "knocked_over"
        return "" if rests[-1] else "placed_outside"

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """'' if at the last frame (the settled one, as judge reads it), after the top block was lifted, the
        tower stands complete with the gripper opened wider than it held that block, else the failure reason."""
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        a = int(layout.obj_qadr[0])
        z = frames.qpos[:, a + 2]
        lifted = np.flatnonzero(z >= z[0] + 0.5 * self.lift)
        if not len(lifted):
            return "not_lifted"
        t0 = int(lifted[0])
        fingers = frames.qpos[:, layout.finger_qadr].sum(1)
        rests, standing = self._stacked(self.place_check(scene), frames, layout)
        if len(z) - 1 <= t0 or not standing[-1]:
            return "knocked_over"
        if not rests[-1]:
            return "placed_outside"
        return "" if fingers[-1] > fingers[t0] + 0.004 else "not_released"
