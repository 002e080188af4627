"""Where the object must go: a coloured region or a low tray, its size, colour and position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.palette import OBJECT_COLOURS, rgba
from synth.randomize import PLACE, Randomizer, uniform
from synth.registry import randomizer
from synth.scenes.layout import sample_free, slot_spacing
from synth.types import Scene

KINDS = ("region", "tray", "bin")


@randomizer("target")
@dataclass(frozen=True)
class Target(Randomizer):
    """Place target: kind from `kinds`, inner half size [m], colour (never the object's), centre x, y [m].
    A task whose own target kind is not in `kinds` (place_in_container's bin) keeps its kind; a task that
    lists `Scene.target_kinds` (push: a flat region) draws only from the kinds both allow; a task whose
    target is an object (stack: target_kinds ("none",)) is left as it is."""

    stage = PLACE
    kinds: tuple[str, ...] = ("region", "tray")
    half_size: tuple[float, float] = (0.06, 0.08)
    x: tuple[float, float] = (0.4, 0.6)
    y: tuple[float, float] = (-0.22, 0.22)
    min_distance: float = 0.16  # [m] from the object's centre
    colours: tuple[str, ...] = tuple(OBJECT_COLOURS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not set(self.kinds) <= set(KINDS) or not self.kinds:
            raise ConfigError(f"randomizers.target.kinds: {list(self.kinds)}; choose from {list(KINDS)}")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        if scene.target_kinds == ("none",):  # the task places onto an object (stack): no target to draw
            return scene, {"kind": "none"}
        obj = scene.objects[0]
        if scene.target_kinds:
            allowed = [k for k in self.kinds if k in scene.target_kinds]
        else:
            allowed = list(self.kinds) if scene.target.kind in self.kinds else []
        drawn = str(rng.choice(allowed or self.kinds))
        kind = drawn if allowed else scene.target.kind
        # the task's objects must fit inside (in their slots when there are several): shift the range up if not
        fp = max(o.footprint for o in scene.objects[: scene.task_objects])
        need = fp + 0.012 if scene.task_objects == 1 else slot_spacing(fp) + fp + 0.006
        half = uniform(rng, (max(self.half_size[0], need), max(self.half_size[1], need)))
        colours = [c for c in self.colours if c != obj.colour] or list(self.colours)
        colour = str(rng.choice(colours))
        taken = [(np.asarray(obj.xy), self.min_distance - half)]
        taken += [(np.asarray(o.xy), o.footprint) for o in scene.objects[1:] if o.active]
        # the square's corners (and a tray's walls) reach half * sqrt(2) + 6 mm from its centre
        xy = sample_free(rng, (*self.x, *self.y), half * 2**0.5 + 0.006, taken, gap=0.0)
        if xy is None:
            xy = np.asarray(scene.target.pos)
        tg = scene.target.__class__(
            kind=kind,
            pos=(float(xy[0]), float(xy[1])),
            size=(half, half),
            wall=scene.target.wall,
            colour=colour,
            rgba=rgba(OBJECT_COLOURS[colour]),
        )
        return scene.replace(target=tg), {
            "kind": kind,
            "x": tg.pos[0],
            "y": tg.pos[1],
            "half_size": half,
            "colour": colour,
        }
