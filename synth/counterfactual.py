"""Counterfactual instructions: the same scene with the task about another object, so a different
instruction and a different trajectory (Language, issue 4).

With `counterfactuals=k`, attempts come in groups of k: attempt i draws its scene from attempt i // k's
randomizer streams, so the k attempts of a group share one scene, and variant v = i % k hands the task to
the v-th other object that could take objects[0]'s place (v = 0: the scene as drawn). The instruction,
planner seed and noise still come from attempt i's own streams, so every episode stays reproducible from
(seed, i) alone.
"""

from __future__ import annotations

import dataclasses

from synth.types import Scene

FIT = 0.012  # [m] an object must fit its target with this much room, as the target randomizer ensures


def candidates(scene: Scene) -> list[int]:
    """Indices of the other active objects the task could be about instead of objects[0]: clutter whose
    shape the task allows and that fits the place target."""
    out = []
    for j, o in enumerate(scene.objects[1:], 1):
        if not o.active or (scene.shapes and o.shape not in scene.shapes):
            continue
        if scene.target.kind != "none" and o.footprint + FIT > min(scene.target.size):
            continue
        out.append(j)
    return out


def variant(scene: Scene, v: int) -> tuple[Scene, int] | None:
    """The scene with objects[0] and the v-th candidate swapped (names kept with their slots), and that
    candidate's index; v = 0 is the scene itself (index 0); None when there are fewer than v candidates."""
    if v == 0:
        return scene, 0
    c = candidates(scene)
    if v > len(c):
        return None
    j = c[v - 1]
    objs = list(scene.objects)
    objs[0], objs[j] = (
        dataclasses.replace(scene.objects[j], name=scene.objects[0].name),
        dataclasses.replace(scene.objects[0], name=scene.objects[j].name),
    )
    return scene.replace(objects=tuple(objs)), j
