"""Referring expressions that single out an object in its scene, and template filling."""

from __future__ import annotations

import re

import numpy as np

from synth.tabletop.objects import noun
from synth.types import Obj, Scene


def size_word(obj: Obj, others: list[Obj]) -> str:
    """'small' / 'large' relative to same-noun objects, '' when that does not distinguish."""
    same = [o for o in others if noun(o) == noun(obj) and o.colour == obj.colour]
    if not same:
        return ""
    vol = float(np.prod(obj.size[:2]))
    vols = [float(np.prod(o.size[:2])) for o in same]
    if vol > 1.3 * max(vols):
        return "large"
    if vol < min(vols) / 1.3:
        return "small"
    return ""


def refer(scene: Scene, i: int) -> str:
    """A description of objects[i] that no other active object in the scene matches, e.g. 'red block'."""
    obj = scene.objects[i]
    n = noun(obj)
    same = [o for k, o in enumerate(scene.objects) if k != i and o.active and noun(o) == n and o.colour == obj.colour]
    if not same:
        return f"{obj.colour} {n}"
    size = size_word(obj, same)
    if size:
        return f"{size} {obj.colour} {n}"
    # still ambiguous: say where it is, seen from the robot (y > 0 is the robot's left)
    if all(obj.xy[1] > o.xy[1] for o in same):
        return f"{obj.colour} {n} on the left"
    if all(obj.xy[1] < o.xy[1] for o in same):
        return f"{obj.colour} {n} on the right"
    if all(obj.xy[0] < o.xy[0] for o in same):
        return f"{obj.colour} {n} closest to you"
    return f"{obj.colour} {n} farthest from you"


def matches(scene: Scene, description: str) -> list[int]:
    """Indices of active objects whose colour and noun words all appear in `description` (for tests)."""
    words = set(description.replace(",", " ").split())
    return [k for k, o in enumerate(scene.objects) if o.active and o.colour in words and noun(o) in words]


def relation(scene: Scene, i: int) -> str:
    """'next to the blue ball' for the nearest other object, or '' when there is none."""
    others = [(k, o) for k, o in enumerate(scene.objects) if k != i and o.active]
    if not others:
        return ""
    me = np.asarray(scene.objects[i].xy)
    k, near = min(others, key=lambda ko: float(np.linalg.norm(np.asarray(ko[1].xy) - me)))
    return f"next to the {refer(scene, k)}"


def substitute(text: str, words: tuple[tuple[str, str], ...]) -> str:
    """`text` with every whole-word occurrence of each word (or phrase) replaced by its replacement, in one pass
    (so swapped pairs do not chain), longer phrases first: substitute("put the red block", (("put", "place"),))."""
    table = dict(words)
    if not table:
        return text
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")\b")
    return pattern.sub(lambda m: table[m.group(1)], text)
