"""Shape, size and colour of the task's object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.palette import OBJECT_COLOURS
from synth.randomize import SCENE, Randomizer, uniform
from synth.registry import randomizer
from synth.scenes import objects
from synth.types import Scene


@randomizer("object_shape")
@dataclass(frozen=True)
class ObjectShape(Randomizer):
    """objects[0]: shape from `shapes`, sizes from the shape family x `scale`, colour from `colours`."""

    stage = SCENE
    shapes: tuple[str, ...] = ("box", "cylinder", "sphere", "capsule", "mesh")
    scale: tuple[float, float] = (0.85, 1.15)
    colours: tuple[str, ...] = tuple(OBJECT_COLOURS)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.shapes if s not in objects.SIZES] + [c for c in self.colours if c not in OBJECT_COLOURS]
        if bad or not self.shapes or not self.colours:
            raise ConfigError(
                f"randomizers.object_shape: unknown or empty choices {bad}; shapes from {list(objects.SIZES)}, "
                f"colours from {list(OBJECT_COLOURS)}"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        old = scene.objects[0]
        shape = str(rng.choice(self.shapes))
        colour = str(rng.choice(self.colours))
        scale = uniform(rng, self.scale)
        new = objects.sample(rng, old.name, shape, colour, scale, mass=old.mass, friction=old.friction)
        scene = scene.with_object(0, shape=new.shape, size=new.size, colour=colour, rgba=new.rgba, mesh=new.mesh)
        return scene, {"shape": shape, "colour": colour, "scale": scale, "size": list(new.size)}
