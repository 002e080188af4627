"""stack: pick one block up and set it on top of another.

The skill script is pick_place's, with the lower block as the place target: the upper block is
released just above the lower one's top face, and the lower block is an obstacle for every motion
until then. Success is judged on the physics only: the upper block was lifted, rests on the lower
block's top face (inside its outline, in contact height), the gripper is open, and the lower block
still stands where it stood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.language import refer
from synth.registry import task
from synth.scenes.pick_place import PickPlace
from synth.scenes.tabletop import Layout
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

    description = "pick one block up and stack it on top of another block"
    templates = TRAIN
    held_out_templates = HELD_OUT
    above_place: float = 0.06
    release_clearance: float = 0.006
    rest_tol: float = 0.01  # [m] the upper block's height above the lower one's centre
    base_shift: float = 0.03  # [m] the lower block may be nudged this far and still count as standing

    def scene(self) -> Scene:
        return Scene(
            objects=(
                Obj(name="obj0", shape="box", size=(0.02, 0.02, 0.02), xy=(0.5, 0.12)),
                Obj(name="obj1", shape="box", size=(0.03, 0.03, 0.02), colour="blue", xy=(0.5, -0.12)),
            ),
            target=Target(kind="none"),
            target_kinds=("none",),
            shapes=FLAT,
            task_objects=2,
        )

    def failure_reasons(self) -> tuple[str, ...]:
        return ("ik_failure", "no_path", "grasp_slip", "dropped", "knocked_over", "placed_outside", "not_released")

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(rng.choice(self.held_out_templates if held_out else self.templates))
        return template.format(obj=refer(scene, 0), base=refer(scene, 1))

    # ------------------------------------------------------------ the place target is the lower block
    def place_xy(self, scene: Scene) -> tuple[float, float]:
        return scene.objects[1].xy

    def place_geoms(self, layout: Layout) -> list[int]:
        return [layout.table_geom, int(layout.obj_geom[1])]

    def height(self, scene: Scene) -> float:
        """The upper block's centre above the lower block's centre when stacked [m]."""
        return scene.objects[1].half_height + scene.objects[0].half_height

    def release_z(self, scene: Scene) -> float:
        return (
            scene.table.height
            + 2 * scene.objects[1].half_height
            + scene.objects[0].half_height
            + self.release_clearance
        )

    def place_check(self, scene: Scene) -> dict:
        base = scene.objects[1]
        return {
            "base_xy": list(base.xy),
            "base_half": [base.size[0], base.size[1]],
            "height": self.height(scene),
        }

    # ------------------------------------------------------------ judging
    def _stacked(self, scene_or_check, frames: Frames, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """(F,) frames where the upper block rests on the lower one; (F,) where the lower one still stands
        near where it started."""
        c = scene_or_check
        a, b = int(layout.obj_qadr[0]), int(layout.obj_qadr[1])
        q = frames.qpos
        pos, bpos, bquat = q[:, a : a + 3], q[:, b : b + 3], q[:, b + 3 : b + 7]
        da, db = int(layout.obj_dadr[0]), int(layout.obj_dadr[1])
        still = (np.linalg.norm(frames.qvel[:, da : da + 3], axis=1) < 0.05) & (
            np.linalg.norm(frames.qvel[:, db : db + 3], axis=1) < 0.05
        )
        rests = on_top(pos, bpos, bquat, np.asarray(c["base_half"]), c["height"], self.rest_tol) & still
        standing = np.linalg.norm(bpos[:, :2] - np.asarray(c["base_xy"]), axis=1) <= self.base_shift
        standing &= np.abs(bpos[:, 2] - bpos[0, 2]) < 0.005
        return rests, standing

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        a = int(layout.obj_qadr[0])
        z = frames.qpos[:, a + 2]
        if z[c["lift_end"]] < c["z0"] + 0.5 * self.lift:
            return "grasp_slip"
        if z[c["transit_end"]] < c["z0"] + 0.5 * self.lift:
            return "dropped"
        if frames.qpos[-1, layout.finger_qadr].sum() < c["grasp_width"] + 0.004:
            return "not_released"
        rests, standing = self._stacked(c, frames, layout)
        if not standing[-1]:
            return "knocked_over"
        return "" if rests[-1] else "placed_outside"

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """'' if at some frame after the upper block was lifted it rests on the standing lower block with
        the gripper opened wider than it held the block, else the failure reason."""
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
        after = np.arange(len(z)) > t0
        released = fingers > fingers[t0] + 0.004
        if (after & rests & standing & released).any():
            return ""
        if not (after & standing).any():
            return "knocked_over"
        return "not_released" if (after & rests & standing).any() else "placed_outside"
