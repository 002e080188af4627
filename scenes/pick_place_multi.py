"""pick_place_multi: put several objects (2 or 3) into one coloured square or low tray, in turn, from one
instruction that names them all.

Each object gets its own slot in the target (side by side, clear of each other), and each pick-and-place
is pick_place's skill script; objects not being carried, and those already placed, are obstacles.
Success is judged on the physics only: every object was lifted, and at the end every object rests inside
the target with the gripper open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.language import refer
from synth.randomize import pick
from synth.registry import task
from synth.scenes.pick_place import PickPlace, surface_z, target_phrase
from synth.skill import Placement
from synth.tabletop.compiler import Layout
from synth.tabletop.placement import slot_spacing
from synth.task import Frames, Plan
from synth.types import Obj, Scene, Target

TRAIN = (
    "put {objs} in the {target}",
    "place {objs} into the {target}",
    "move {objs} to the {target}",
    "pick up {objs} and put them in the {target}",
    "put {objs} in the {target}, one at a time",
    "collect {objs} in the {target}",
    "gather {objs} into the {target}",
    "transfer {objs} to the {target}",
    "take {objs} and drop them in the {target}",
    "could you put {objs} in the {target}",
    "both go in the {target}: {objs}",
    "lift {objs} and set them down in the {target}",
    "load {objs} into the {target}",
    "clear {objs} off the table into the {target}",
    "place {objs} in the {target}, please",
    "one by one, move {objs} into the {target}",
    "get {objs} into the {target}",
    "carry {objs} over to the {target}",
    "put away {objs} in the {target}",
    "pick {objs} up and place them in the {target}",
)
HELD_OUT = (
    "I need {objs} in the {target}",
    "fill the {target} with {objs}",
    "bring {objs} over to the {target}",
    "the {target} should end up holding {objs}",
    "round up {objs} in the {target}",
    "stow {objs} in the {target}",
)


def listed(phrases: list[str]) -> str:
    """'the red block and the blue ball' / 'the a, the b and the c'."""
    items = [f"the {p}" for p in phrases]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@task("pick_place_multi")
@dataclass(frozen=True)
class PickPlaceMulti(PickPlace):
    """Put `count` objects into one target, one after another."""

    description = "put several objects (2 or 3) into one coloured square or tray, one after another"
    templates = TRAIN
    held_out_templates = HELD_OUT
    physics_step = 0.002  # [s] pick_place's larger step not yet measured on >= 2,000 attempts here
    kinematic = True
    count: int = key(2, "objects to put away: 2 or 3")
    gap: float = key(0.006, "[m] between neighbouring objects' footprints in the target")

    def __post_init__(self) -> None:
        if self.count not in (2, 3):
            raise ConfigError(f"task.count={self.count}: give 2 or 3 objects")

    def scene(self) -> Scene:
        nominal = (
            Obj(name="obj0", shape="box", size=(0.02, 0.02, 0.02), xy=(0.45, 0.15)),
            Obj(name="obj1", shape="cylinder", size=(0.02, 0.025, 0.0), colour="blue", xy=(0.55, 0.15)),
            Obj(name="obj2", shape="box", size=(0.02, 0.02, 0.02), colour="yellow", xy=(0.5, 0.0)),
        )
        return Scene(objects=nominal[: self.count], target=Target(size=(0.1, 0.1)), task_objects=self.count)

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        names = listed([refer(scene, i) for i in range(self.count)])
        return template.format(objs=names, target=target_phrase(scene.target))

    # ------------------------------------------------------------ one slot of the target per object
    def slots(self, scene: Scene) -> np.ndarray:
        """(count, 2) centres [m] in the world: side by side for 2, a triangle for 3."""
        d = slot_spacing(max(o.footprint for o in scene.objects[: self.count]), self.gap)
        offsets = [(0.0, -d), (0.0, d)] if self.count == 2 else [(-d, -d), (-d, d), (d, 0.0)]
        return np.asarray(scene.target.pos) + np.asarray(offsets)

    def placements(self, scene: Scene) -> list[Placement]:
        out = []
        for i, xy in enumerate(self.slots(scene)):
            rest = surface_z(scene) + scene.objects[i].half_height
            out.append(Placement(i, (float(xy[0]), float(xy[1])), rest + self.release_clearance, rest))
        return out

    def placed(self, scenes: list[Scene], centre: np.ndarray) -> np.ndarray:
        """(E,) whether every object at rest with its centre at centre (E, count, 3) [m] is inside the target's
        outline within its rest band (the kinematic mode's verdict)."""
        ok = np.ones(len(scenes), bool)
        for e, sc in enumerate(scenes):
            for i in range(self.count):
                lo, hi = self.rest_band(sc, i)
                inside = np.all(np.abs(centre[e, i, :2] - np.asarray(sc.target.pos)) <= np.asarray(sc.target.size))
                ok[e] &= bool(inside and lo < centre[e, i, 2] < hi)
        return ok

    def place_check(self, scene: Scene) -> dict:
        tg = scene.target
        bands = [list(self.rest_band(scene, i)) for i in range(self.count)]
        if tg.walled:  # inside a tray an object may lean on a wall or a neighbour
            bands = [[lo - 0.01, hi + 0.02] for lo, hi in bands]
        return {"target_xy": list(tg.pos), "target_half": list(tg.size), "rest_bands": bands}

    # ------------------------------------------------------------ judging
    def _placed(self, c: dict, frames: Frames, layout: Layout) -> np.ndarray:
        """(F,) frames where every object rests inside the target."""
        ok = np.ones(len(frames.qpos), bool)
        for i, (lo, hi) in enumerate(c["rest_bands"]):
            a, d = int(layout.obj_qadr[i]), int(layout.obj_dadr[i])
            pos = frames.qpos[:, a : a + 3]
            inside = np.all(np.abs(pos[:, :2] - np.asarray(c["target_xy"])) <= np.asarray(c["target_half"]), axis=1)
            still = np.linalg.norm(frames.qvel[:, d : d + 3], axis=1) < 0.05
            ok &= inside & (lo < pos[:, 2]) & (pos[:, 2] < hi) & still
        return ok

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        return self.carried(c, frames, layout) or ("" if self._placed(c, frames, layout)[-1] else "placed_outside")

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """'' if at some frame after the last object was lifted every object rests inside the target with
        the gripper opened wider than it held that object, else the failure reason."""
        return self.released(frames, layout, self._placed(self.place_check(scene), frames, layout), self.count)
