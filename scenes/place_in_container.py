"""place_in_container: pick one object up and drop it into a bin with tall walls.

The skill script is pick_place's; the object is released with its bottom above the rim, and it counts as
placed when it comes to rest inside the bin's walls, lying in any orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

from synth.keys import key
from synth.registry import task
from synth.scenes.pick_place import PickPlace, surface_z
from synth.types import Obj, Scene, Target

TRAIN = (
    "put the {obj} in the {target}",
    "drop the {obj} into the {target}",
    "place the {obj} inside the {target}",
    "pick up the {obj} and put it in the {target}",
    "move the {obj} into the {target}",
    "throw the {obj} in the {target}",
    "the {obj} goes into the {target}",
    "put the {obj} {rel} into the {target}",
    "pick the {obj} up and drop it in the {target}",
    "load the {obj} into the {target}",
    "store the {obj} in the {target}",
    "get the {obj} into the {target}",
    "lift the {obj} and drop it into the {target}",
    "grab the {obj} and place it inside the {target}",
    "could you put the {obj} in the {target}",
    "transfer the {obj} into the {target}",
    "pick up the {obj} {rel} and drop it in the {target}",
    "deposit the {obj} inside the {target}",
    "tidy the {obj} away into the {target}",
    "place the {obj} into the {target}, please",
)
HELD_OUT = (
    "I want the {obj} inside the {target}",
    "stow the {obj} in the {target}",
    "the {target} needs the {obj} in it",
    "pack the {obj} into the {target}",
    "dump the {obj} in the {target}",
    "find the {obj} and put it away in the {target}",
)


@task("place_in_container")
@dataclass(frozen=True)
class PlaceInContainer(PickPlace):
    """Pick the object up and drop it into a bin."""

    description = "pick one object up and drop it into a bin with tall walls"
    templates = TRAIN
    held_out_templates = HELD_OUT
    # [s] 5 ms under 20 Hz control labels as 1 ms does on 99.90% of 2,013 attempts (benchmarks/physics_step.py)
    physics_step = 0.005
    wall: float = key(0.07, "[m] bin wall height")
    rim_clearance: float = key(0.02, "[m] object bottom above the rim when the gripper opens")
    above_place: float = 0.06

    def scene(self) -> Scene:
        return Scene(
            objects=(Obj(name="obj0", shape="box", size=(0.025, 0.02, 0.025), xy=(0.5, 0.12)),),
            target=Target(
                kind="bin",
                pos=(0.5, -0.15),
                size=(0.08, 0.08),
                wall=self.wall,
                colour="blue",
                rgba=(0.12, 0.30, 0.85, 1.0),
            ),
        )

    def release_z(self, scene: Scene) -> float:
        return surface_z(scene) + scene.target.wall + self.rim_clearance + scene.objects[0].half_height

    def rest_band(self, scene: Scene, i: int = 0) -> tuple[float, float]:
        """Anywhere below the rim, lying in any orientation."""
        return surface_z(scene), surface_z(scene) + scene.target.wall
