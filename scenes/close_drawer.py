"""close_drawer: push an open drawer shut by its handle (scenes/drawer.py has the skill)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import pick
from synth.registry import task
from synth.scenes.drawer import DrawerTask, drawer_phrase
from synth.types import Drawer, Scene, Target

TRAIN = (
    "close the {drawer}",
    "push the {drawer} shut",
    "shut the {drawer}",
    "close the {drawer}, please",
    "slide the {drawer} closed",
    "push the {drawer} closed",
    "push in the {drawer}",
    "push the {drawer} back in",
    "grab the handle and close the {drawer}",
    "take the handle of the {drawer} and push it in",
    "could you close the {drawer}",
    "push the handle of the {drawer} away from you",
    "get the {drawer} closed",
    "slide the {drawer} back into the cabinet",
    "close the open {drawer}",
    "close the {drawer} by its handle",
    "push on the handle to close the {drawer}",
    "the {drawer} is open: close it",
    "use the handle to push the {drawer} shut",
    "close the {drawer} all the way",
)
HELD_OUT = (
    "slam the {drawer} shut, gently",
    "I need the {drawer} closed",
    "tuck the {drawer} back in",
    "make the {drawer} close",
    "retract the {drawer}",
    "the {drawer} should be closed",
)


@task("close_drawer")
@dataclass(frozen=True)
class CloseDrawer(DrawerTask):
    """Close the drawer: push its handle in along the drawer's axis."""

    description = "push a cabinet's open drawer shut by its handle (an articulated drawer built procedurally)"
    templates = TRAIN
    held_out_templates = HELD_OUT
    success: float = key(0.015, "[m] success: the drawer ends at most this far out")

    def scene(self) -> Scene:
        return Scene(drawer=Drawer(opening=0.1), task_objects=0, target=Target(kind="none"), target_kinds=("none",))

    def goal(self, dr: Drawer) -> float:
        return 0.0

    def done(self, dr: Drawer, position: float) -> bool:
        return position <= self.success

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        return template.format(drawer=drawer_phrase(scene, rng))
