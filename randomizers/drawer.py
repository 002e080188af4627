"""The cabinet of a drawer task: where it stands and which way it faces, its size, colour, how far the
drawer slides, how far it is out at the start, and how stiff its slide is. Scenes without a drawer are
left as they are."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.palette import OBJECT_COLOURS, rgba
from synth.randomize import SCENE, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.types import Scene


@randomizer("drawer", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class DrawerLook(Randomizer):
    """Cabinet centre x, y [m] and yaw [rad] (0: its front faces the world origin, where a single arm's base
    stands; the smaller arms stand a little further in; recorded with the resulting world heading), half
    depth/width/height [m], colour; travel [m]; the start opening as a fraction of the travel, (closed, open)
    for tasks that start closed (open_drawer) or open (close_drawer); slide damping [N s/m] and friction [N]."""

    description = "the drawer tasks' cabinet: place, size, colour, travel, slide"
    stage = SCENE
    x: tuple[float, float] = key(
        (0.6, 0.68), "[m] range of the cabinet centre's x (world; a single arm's base at the origin)"
    )
    y: tuple[float, float] = key((-0.15, 0.15), "[m] range of the cabinet centre's y (world)")
    yaw: tuple[float, float] = key((-0.35, 0.35), "[rad] range of the cabinet's turn away from facing the world origin")
    depth: tuple[float, float] = key((0.1, 0.13), "[m] range of the cabinet's half depth")
    width: tuple[float, float] = key((0.12, 0.16), "[m] range of the cabinet's half width")
    height: tuple[float, float] = key((0.055, 0.075), "[m] range of the cabinet's half height")
    travel: tuple[float, float] = key((0.1, 0.15), "[m] range of the drawer's travel (at most 1.6 x the half depth)")
    start_closed: tuple[float, float] = key(
        (0.0, 0.1), "range of the start opening / travel where the task opens the drawer; within [0, 1]"
    )
    start_open: tuple[float, float] = key(
        (0.6, 0.9), "range of the start opening / travel where the task closes the drawer; within [0, 1]"
    )
    damping: tuple[float, float] = key((4.0, 12.0), "[N s/m] range of the slide's damping")
    friction: tuple[float, float] = key((0.5, 2.0), "[N] range of the slide's friction")
    colours: tuple[str, ...] = key(tuple(OBJECT_COLOURS), "colour names drawn from (any of the default's)")

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        dr = scene.drawer
        if dr is None:
            return scene, {}
        x, y, turn = uniform(rng, self.x), uniform(rng, self.y), uniform(rng, self.yaw)
        heading = float(math.atan2(y, x) + turn)  # face the world origin, then turn by the drawn yaw
        depth, width, height = uniform(rng, self.depth), uniform(rng, self.width), uniform(rng, self.height)
        travel = min(uniform(rng, self.travel), 1.6 * depth)
        start = uniform(rng, self.start_open if dr.opening > 0 else self.start_closed) * travel
        damping, friction = uniform(rng, self.damping), uniform(rng, self.friction)
        colour = str(pick(rng, self.colours))
        new = dr.__class__(
            pos=(x, y),
            yaw=heading,
            size=(depth, width, height),
            travel=travel,
            opening=start,
            damping=damping,
            friction=friction,
            handle=min(dr.handle, width - 0.03),
            standoff=dr.standoff,
            colour=colour,
            rgba=rgba(OBJECT_COLOURS[colour]),
        )
        return scene.replace(drawer=new), {
            "x": x,
            "y": y,
            "yaw": turn,
            "heading": heading,
            "depth": depth,
            "width": width,
            "height": height,
            "travel": travel,
            "opening": start,
            "damping": damping,
            "friction": friction,
            "colour": colour,
        }
