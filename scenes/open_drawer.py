"""open_drawer: pull a cabinet's drawer out by its handle (scenes/drawer.py has the skill)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import pick
from synth.registry import task
from synth.scenes.drawer import DrawerTask, drawer_phrase
from synth.types import Drawer, Scene, Target

TRAIN = (
    "open the {drawer}",
    "pull the {drawer} open",
    "pull open the {drawer}",
    "open the {drawer}, please",
    "slide the {drawer} open",
    "pull out the {drawer}",
    "pull the {drawer} out",
    "grab the handle and open the {drawer}",
    "take the handle of the {drawer} and pull it out",
    "open up the {drawer}",
    "could you open the {drawer}",
    "pull the handle of the {drawer} towards you",
    "get the {drawer} open",
    "slide out the {drawer}",
    "draw the {drawer} out",
    "open the {drawer} by its handle",
    "pull on the handle to open the {drawer}",
    "the {drawer} is shut: open it",
    "use the handle to pull the {drawer} open",
    "open the {drawer} all the way",
)
HELD_OUT = (
    "yank the {drawer} open",
    "I need the {drawer} opened",
    "tug the {drawer} out by its handle",
    "make the {drawer} open",
    "extend the {drawer}",
    "the {drawer} should be open",
)


@task("open_drawer")
@dataclass(frozen=True)
class OpenDrawer(DrawerTask):
    """Open the drawer: pull its handle out along the drawer's axis."""

    description = "pull a cabinet's drawer open by its handle (an articulated drawer built procedurally)"
    templates = TRAIN
    held_out_templates = HELD_OUT
    # [s] 5 ms under 20 Hz control labels as 1 ms does on 100% of 2,000 attempts (benchmarks/physics_step.py)
    physics_step = 0.005
    pull: float = key(0.9, "the plan takes the drawer to this fraction of its travel; in (0, 1]")
    success: float = key(0.7, "success: the drawer ends at least this fraction of its travel out; in (0, 1]")

    def scene(self) -> Scene:
        return Scene(drawer=Drawer(opening=0.0), task_objects=0, target=Target(kind="none"), target_kinds=("none",))

    def goal(self, dr: Drawer) -> float:
        return self.pull * dr.travel

    def done(self, dr: Drawer, position: float) -> bool:
        return position >= self.success * dr.travel

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        return template.format(drawer=drawer_phrase(scene, rng))
