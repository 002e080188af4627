"""Where the object must go: a coloured region or a low tray, its size, colour and position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.palette import OBJECT_COLOURS, rgba
from synth.randomize import PLACE, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.tabletop.placement import FINGER_REACH, sample_free, slot_spacing
from synth.types import Obj, Scene, replace
from synth.types import Target as TargetSpec

KINDS = ("region", "tray", "bin")
APART = 0.03  # [m] between the outlines of two targets (sort)
ROUNDS = 10  # tries at placing several targets together in the x, y ranges
NEAR = 0.05  # [m] then each within this of its nominal place


@randomizer("target", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Target(Randomizer):
    """Place target: kind from `kinds`, inner half size [m], colour (never the object's), centre x, y [m].
    A task whose own target kind is not in `kinds` (place_in_container's bin) keeps its kind; a task that
    lists `Scene.target_kinds` (push: a flat region) draws only from the kinds both allow; a task whose
    target is an object (stack: target_kinds ("none",)) is left as it is. A scene with extra `targets` (sort)
    gets each drawn the same way, APART from the ones before it, and recorded under "target<k>"; when its
    objects are sorted by colour, each target takes its class's colour, else one no task object has."""

    description = "the place target: kind (square, tray), size, colour, x, y"
    stage = PLACE
    kinds: tuple[str, ...] = key(("region", "tray"), "target kinds drawn from: region (a coloured square), tray, bin")
    half_size: tuple[float, float] = key(
        (0.06, 0.08), "[m] range of the target's inner half size (grown where its objects need more)"
    )
    x: tuple[float, float] = key((0.4, 0.6), "[m] range of the target centre's x (world; the robot base at the origin)")
    y: tuple[float, float] = key((-0.22, 0.22), "[m] range of the target centre's y (world)")
    min_distance: float = key(0.16, "[m] least distance of the target from the object's centre")
    colours: tuple[str, ...] = key(
        tuple(OBJECT_COLOURS), "colour names drawn from (any of the default's); never the object's"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not set(self.kinds) <= set(KINDS) or not self.kinds:
            raise ConfigError(f"randomizers.target.kinds: {list(self.kinds)}; choose from {list(KINDS)}")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        if scene.target_kinds == ("none",):  # the task places onto an object (stack): no target to draw
            return scene, {"kind": "none"}
        looks: list[TargetSpec] = []
        for k, nominal in enumerate(scene.all_targets):  # kind, size, colour; then where they all go
            looks.append(self._look(scene, k, nominal, looks, rng))
        spots = self._spots(scene, looks, rng)
        placed = [replace(t, pos=(float(xy[0]), float(xy[1]))) for t, xy in zip(looks, spots, strict=True)]
        draws: dict = {}
        for k, tg in enumerate(placed):
            d = {"kind": tg.kind, "x": tg.pos[0], "y": tg.pos[1], "half_size": tg.size[0], "colour": tg.colour}
            draws.update(d if k == 0 else {f"target{k}": d})
        return scene.replace(target=placed[0], targets=tuple(placed[1:])), draws

    def _look(
        self, scene: Scene, k: int, nominal: TargetSpec, before: list[TargetSpec], rng: np.random.Generator
    ) -> TargetSpec:
        """Target k of Scene.all_targets at its nominal place: kind, size and colour drawn."""
        if scene.target_kinds:
            allowed = [kd for kd in self.kinds if kd in scene.target_kinds]
        else:
            allowed = list(self.kinds) if nominal.kind in self.kinds else []
        drawn = str(pick(rng, allowed or self.kinds))
        kind = drawn if allowed else nominal.kind
        # the objects it takes must fit inside (in their slots when there are several): shift the range up if not
        members = [i for i in range(scene.task_objects) if not scene.groups or scene.groups[i] == k]
        fp = max(scene.objects[i].footprint for i in members)
        need = fp + 0.012 if len(members) == 1 else slot_spacing(fp) + fp + 0.006
        half = uniform(rng, (max(self.half_size[0], need), max(self.half_size[1], need)))
        if scene.sort_by == "colour":  # a class's target wears the colour its objects share
            colour = scene.objects[members[0]].colour
        else:  # never an object's colour where several go to their own targets (sort), nor another target's
            avoid = {scene.objects[0].colour, *(t.colour for t in before)}
            avoid |= {o.colour for o in scene.objects[: scene.task_objects]} if scene.groups else set()
            colour = str(pick(rng, [c for c in self.colours if c not in avoid] or list(self.colours)))
        look = rgba(OBJECT_COLOURS[colour])
        return replace(nominal, kind=kind, size=(half, half), colour=colour, rgba=look)

    def _spots(self, scene: Scene, looks: list[TargetSpec], rng: np.random.Generator) -> list[np.ndarray]:
        """Centres (2,) [m] of the targets, each clear of the objects and APART from the ones before it. Several
        targets (sort) are drawn again together, up to ROUNDS times, when one finds no room in the x, y ranges,
        then within NEAR of their nominal places (which the objects were placed clear of); targets that find no
        room at all keep their nominal places (as a single target does at once)."""
        obj = scene.objects[0]

        def reach(i: int, o: Obj) -> float:  # sort picks every task object: keep room for the open fingers
            return max(o.footprint, FINGER_REACH + 0.01) if scene.groups and i < scene.task_objects else o.footprint

        def free(tg: TargetSpec, box: tuple[float, float, float, float], spots: list[np.ndarray]) -> np.ndarray | None:
            half = tg.size[0]
            taken = [(np.asarray(obj.xy), self.min_distance - half)]
            taken += [(np.asarray(o.xy), reach(i, o)) for i, o in enumerate(scene.objects[1:], 1) if o.active]
            taken += [(xy, float(np.hypot(*t.size)) + 0.006 + APART) for t, xy in zip(looks, spots, strict=False)]
            # the square's corners (and a tray's walls) reach half * sqrt(2) + 6 mm from its centre
            return sample_free(rng, box, half * 2**0.5 + 0.006, taken, gap=0.0)

        ranges = (*self.x, *self.y)
        tries = [[ranges] * len(looks)] * (1 if len(looks) == 1 else ROUNDS)
        if len(looks) > 1:
            tries.append([(t.pos[0] - NEAR, t.pos[0] + NEAR, t.pos[1] - NEAR, t.pos[1] + NEAR) for t in looks])
        for boxes in tries:
            spots: list[np.ndarray] = []
            for tg, box in zip(looks, boxes, strict=True):
                xy = free(tg, box, spots)
                if xy is None:
                    break
                spots.append(xy)
            if len(spots) == len(looks):
                return spots
        return [np.asarray(t.pos) for t in looks]
