"""sort: put 3 or 4 objects of two classes, by colour or by shape, each into its own class's coloured square
or low tray, from one instruction that names the rule and the regions.

`by: colour` gives each class one colour (two red and two blue objects go to the red and the blue square);
`by: shape` gives each class one shape (cubes to one region, balls to the other). The scene has two place
targets: `target` takes class 0, `targets[0]` class 1. Each object gets its own slot in its class's region,
and each pick-and-place is pick_place's skill script; objects not being carried, and those already placed,
are obstacles. Success is judged on the physics only: every object was lifted and carried, and at the end
every object rests inside its own class's region with the gripper open; one resting in the other class's
region is `wrong_region`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import pick
from synth.registry import task
from synth.scenes.pick_place import PickPlace, surface_z, target_phrase
from synth.skill import Placement
from synth.tabletop import objects
from synth.tabletop.compiler import Layout
from synth.tabletop.objects import NOUNS, noun
from synth.tabletop.placement import slot_spacing
from synth.task import Frames, Plan
from synth.types import Obj, Scene, Target

# {a}, {b}: the two classes ("red objects", "cubes"), {ra}, {rb}: their regions ("red square", "green tray"),
# {bb}: class b said briefly ("blue ones", "balls"), {rule}: "colour" or "shape"
TRAIN = (
    "put the {a} in the {ra} and the {bb} in the {rb}",
    "put the {a} in the {ra} and the {b} in the {rb}",
    "sort the objects by {rule}: the {a} in the {ra}, the {b} in the {rb}",
    "sort the objects by {rule}, putting the {a} in the {ra} and the {b} in the {rb}",
    "place the {a} into the {ra} and the {b} into the {rb}",
    "move the {a} to the {ra} and the {bb} to the {rb}",
    "sort by {rule}: move the {a} to the {ra} and the {b} to the {rb}",
    "transfer the {a} to the {ra} and the {b} to the {rb}",
    "group the objects by {rule}: the {a} into the {ra}, the {b} into the {rb}",
    "separate the objects by {rule}, with the {a} in the {ra} and the {b} in the {rb}",
    "could you put the {a} in the {ra} and the {bb} in the {rb}",
    "organize the objects by {rule}: the {a} in the {ra} and the {b} in the {rb}",
    "carry the {a} over to the {ra} and the {b} over to the {rb}",
    "get the {a} into the {ra} and the {b} into the {rb}",
    "sort the objects: the {a} in the {ra} and the {b} in the {rb}",
    "tidy the table by {rule}: the {a} to the {ra}, the {b} to the {rb}",
    "set the {a} down in the {ra} and the {bb} in the {rb}",
    "split the objects by {rule}, the {a} into the {ra} and the {b} into the {rb}",
    "place the {a} in the {ra} and the {b} in the {rb}, please",
    "arrange the objects by {rule}: the {a} in the {ra}, the {b} in the {rb}",
    "the {ra} gets the {a} and the {rb} gets the {b}",
    "pick up the {a} and the {b} and sort them by {rule}: the {a} in the {ra}, the {b} in the {rb}",
)
HELD_OUT = (
    "I need the {a} in the {ra} and the {bb} in the {rb}",
    "the {a} should end up in the {ra} and the {b} in the {rb}",
    "deposit the {a} in the {ra} and the {b} in the {rb}",
    "bin the objects by {rule}, the {a} to the {ra} and the {b} to the {rb}",
    "classify by {rule}: the {a} into the {ra}, the {b} into the {rb}",
    "clear the table by {rule}: the {a} into the {ra} and the {bb} into the {rb}",
)
RULES = ("colour", "shape")
SHAPES = ("box", "cylinder", "sphere", "capsule")  # those task.shapes may list: each has its own name
PLURAL = {"cube": "cubes", "block": "blocks", "cylinder": "cylinders", "ball": "balls", "capsule": "capsules"}


def class_phrase(scene: Scene, members: list[int], by: str, brief: bool = False) -> str:
    """What a class is called: 'red objects' / 'red ones' / 'red object' by colour; 'cubes' (every box a
    cube), 'blocks', 'balls', 'cylinders' or one such noun by shape."""
    objs = [scene.objects[i] for i in members]
    if by == "colour":
        word = "ones" if brief else "objects"
        return f"{objs[0].colour} {word if len(objs) > 1 else word[:-1]}"
    nouns = {noun(o) for o in objs}
    name = nouns.pop() if len(nouns) == 1 else NOUNS[objs[0].shape]
    return PLURAL[name] if len(objs) > 1 else name


@task("sort")
@dataclass(frozen=True)
class Sort(PickPlace):
    """Sort `count` objects of two classes (by colour or by shape) into two regions, one per class."""

    description = "sort 3-4 objects by colour or by shape (task.by) into two coloured squares or trays"
    templates = TRAIN
    held_out_templates = HELD_OUT
    physics_step = 0.002  # [s] pick_place's larger step not yet measured on >= 2,000 attempts here
    kinematic = True
    by: str = key("colour", "what the two classes differ in: colour or shape")
    count: int = key(4, "objects to sort: 3 or 4 (two per class; with 3, class 1 has one)")
    gap: float = key(0.006, "[m] between neighbouring objects' footprints in a region")
    shapes: tuple[str, ...] = key(
        ("box", "cylinder"),
        "the objects' shapes: box, cylinder, sphere, capsule (spheres may roll off a region); by=shape: 2+",
    )

    def __post_init__(self) -> None:
        if self.by not in RULES:
            raise ConfigError(f"task.by={self.by!r}: give one of {list(RULES)}")
        if self.count not in (3, 4):
            raise ConfigError(f"task.count={self.count}: give 3 or 4 objects")
        if not self.shapes or not set(self.shapes) <= set(SHAPES) or (self.by == "shape" and len(self.shapes) < 2):
            raise ConfigError(
                f"task.shapes={list(self.shapes)}: give {'two or more' if self.by == 'shape' else 'some'} of "
                f"{list(SHAPES)}"
            )

    def groups(self) -> tuple[int, ...]:
        """The class (= region index in Scene.all_targets) of each task object: alternating, from 0."""
        return tuple(i % 2 for i in range(self.count))

    def scene(self) -> Scene:
        # a nominal scene that already obeys the rule (any randomizer may be off)
        colours = ("red", "blue") * 2 if self.by == "colour" else ("red", "blue", "yellow", "purple")
        spots = ((0.42, -0.05), (0.42, 0.05), (0.6, -0.05), (0.6, 0.05))
        objs = []
        for i, g in enumerate(self.groups()):
            shape = self.shapes[g if self.by == "shape" else (i // 2) % len(self.shapes)]
            size = tuple(lo for lo, _ in objects.SIZES[shape])  # the family's smallest
            objs.append(Obj(name=f"obj{i}", shape=shape, size=size, colour=colours[i], xy=spots[i]))  # type: ignore[arg-type]
        first, second = ("red", "blue") if self.by == "colour" else ("green", "orange")
        return Scene(
            objects=tuple(objs),
            target=Target(pos=(0.5, -0.3), size=(0.09, 0.09), colour=first),
            targets=(Target(pos=(0.5, 0.3), size=(0.09, 0.09), colour=second),),
            shapes=self.shapes,
            task_objects=self.count,
            groups=self.groups(),
            sort_by=self.by,
        )

    def failure_reasons(self) -> tuple[str, ...]:
        return (
            "ik_failure",
            "no_path",
            "miss_held",
            "grasp_slip",
            "dropped",
            "wrong_region",
            "placed_outside",
            "not_released",
            "unstable",
        )

    def members(self, scene: Scene, k: int) -> list[int]:
        """Indices of the task objects of class k, in order."""
        return [i for i, g in enumerate(scene.groups) if g == k]

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        a, b = (0, 1) if rng.random() < 0.5 else (1, 0)  # which class is named first
        regions = scene.all_targets
        return template.format(
            a=class_phrase(scene, self.members(scene, a), self.by),
            b=class_phrase(scene, self.members(scene, b), self.by),
            bb=class_phrase(scene, self.members(scene, b), self.by, brief=True),
            ra=target_phrase(regions[a]),
            rb=target_phrase(regions[b]),
            rule=self.by,
        )

    # ------------------------------------------------------------ one slot per object in its class's region
    def slots(self, scene: Scene) -> np.ndarray:
        """(count, 2) centres [m] in the world: a class's only object at its region's centre, two side by side."""
        out = np.zeros((self.count, 2))
        for k, tg in enumerate(scene.all_targets):
            mine = self.members(scene, k)
            d = slot_spacing(max(scene.objects[i].footprint for i in mine), self.gap)
            offsets = [(0.0, 0.0)] if len(mine) == 1 else [(0.0, -d), (0.0, d)]
            out[mine] = np.asarray(tg.pos) + np.asarray(offsets)
        return out

    def _surface(self, scene: Scene, i: int) -> float:
        """Height of the surface inside objects[i]'s region [m]."""
        return surface_z(scene.replace(target=scene.all_targets[scene.groups[i]]))

    def rest_band(self, scene: Scene, i: int = 0) -> tuple[float, float]:
        z = self._surface(scene, i) + scene.objects[i].half_height
        return z - 0.015, z + 0.015

    def placements(self, scene: Scene) -> list[Placement]:
        out = []
        for i, xy in enumerate(self.slots(scene)):
            rest = self._surface(scene, i) + scene.objects[i].half_height
            xy_ = (float(xy[0]), float(xy[1]))
            out.append(Placement(i, xy_, rest + self.release_clearance, rest, target=scene.groups[i]))
        return out

    def placed(self, scenes: list[Scene], centre: np.ndarray) -> np.ndarray:
        """(E,) whether every object at rest with its centre at centre (E, count, 3) [m] is inside its own class's
        region within its rest band (the kinematic mode's verdict)."""
        ok = np.ones(len(scenes), bool)
        for e, sc in enumerate(scenes):
            for i, g in enumerate(sc.groups):
                tg, (lo, hi) = sc.all_targets[g], self.rest_band(sc, i)
                inside = np.all(np.abs(centre[e, i, :2] - np.asarray(tg.pos)) <= np.asarray(tg.size))
                ok[e] &= bool(inside and lo < centre[e, i, 2] < hi)
        return ok

    def place_check(self, scene: Scene) -> dict:
        regions = scene.all_targets
        bands = []
        for i, g in enumerate(scene.groups):
            lo, hi = self.rest_band(scene, i)
            bands.append([lo - 0.01, hi + 0.02] if regions[g].walled else [lo, hi])
        return {
            "targets_xy": [list(t.pos) for t in regions],
            "targets_half": [list(t.size) for t in regions],
            "groups": list(scene.groups),
            "rest_bands": bands,  # a tray's are wider: an object may lean on a wall or a neighbour
        }

    # ------------------------------------------------------------ judging
    def _regions(self, c: dict, frames: Frames, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """(F, count) index of the region each object's centre is over (-1: none), and (F, count) whether it
        rests there: within its rest band and still."""
        xy, half = np.asarray(c["targets_xy"]), np.asarray(c["targets_half"])
        where = np.full((len(frames.qpos), self.count), -1)
        rests = np.zeros((len(frames.qpos), self.count), bool)
        for i, (lo, hi) in enumerate(c["rest_bands"]):
            a, d = int(layout.obj_qadr[i]), int(layout.obj_dadr[i])
            pos = frames.qpos[:, a : a + 3]
            for k in range(len(xy)):
                where[np.all(np.abs(pos[:, :2] - xy[k]) <= half[k], axis=1), i] = k
            still = np.linalg.norm(frames.qvel[:, d : d + 3], axis=1) < 0.05
            rests[:, i] = (lo < pos[:, 2]) & (pos[:, 2] < hi) & still
        return where, rests

    def _verdict(self, where: np.ndarray, rests: np.ndarray, groups: list[int]) -> np.ndarray:
        """(F,) '' where every object rests in its own class's region, else 'wrong_region' (one is over the
        other class's region) or 'placed_outside'."""
        own = where == np.asarray(groups)
        wrong = ((where >= 0) & ~own).any(1)
        ok = (own & rests).all(1)
        return np.where(ok, "", np.where(wrong, "wrong_region", "placed_outside"))

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        why = self.carried(c, frames, layout)
        if why:
            return why
        where, rests = self._regions(c, frames, layout)
        return str(self._verdict(where[-1:], rests[-1:], c["groups"])[0])

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """'' if at some frame after the last object was lifted every object rests in its own class's region
        with the gripper opened wider than it held that object, else the failure reason (the last frame's
        wrong_region or placed_outside when it never got there)."""
        c = self.place_check(scene)
        verdict = self._verdict(*self._regions(c, frames, layout), c["groups"])
        return self.released(frames, layout, verdict == "", self.count, str(verdict[-1]) or "placed_outside")
