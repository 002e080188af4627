"""Synonym substitution in the instruction: other words for the objects, the target and the verbs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import VISUAL, Randomizer, pick
from synth.registry import randomizer
from synth.tabletop.objects import noun
from synth.types import Scene

LANGUAGE = VISUAL + 1  # after every stage that places, adds or recolours objects
# object nouns (synth.tabletop.objects.noun) -> other words for them; every word names one kind of object only
NOUNS = {
    "cube": ("block",),
    "block": ("brick",),
    "ball": ("sphere",),
    "cylinder": ("can",),
    "capsule": ("pill",),
    "rock": ("stone", "pebble"),
}
TARGETS = {"square": ("patch", "area"), "tray": ("box",), "bin": ("container", "basket")}  # never an object's word
# verbs of the training templates; no replacement is a word only the held-out templates use (tests check)
VERBS = {
    "pick up": ("grab", "take"),
    "put": ("place",),
    "place": ("put",),
    "move": ("transfer", "relocate"),
    "lift": ("raise",),
    "grab": ("grasp", "take"),
    "carry": ("transport",),
    "push": ("shove", "nudge"),
}
# the drawer tasks' words (last, so that adding them left every other class's draws as they were)
FURNITURE = {"drawer": ("cabinet drawer",), "handle": ("grip",), "close": ("shut",)}
LONG = {"bar": ("rod", "beam")}  # bimanual_lift's object (after FURNITURE, for the same reason)
KEEP = {"put": ("put away",)}  # phrases left alone when their word is replaced (a longer match wins)
CLASSES = {**NOUNS, **TARGETS, **VERBS, **FURNITURE, **LONG}


def names(n: str) -> set[str]:
    """Every word that may name an object whose noun is `n`."""
    return {n, *NOUNS.get(n, ())}


@randomizer("synonyms", acts_on="language", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class Synonyms(Randomizer):
    """Instruction synonyms: each word class in `classes` is replaced with probability `rate`.
    A class (an object noun, a target word, a verb) is replaced by one of its synonyms, drawn uniformly, in the
    whole instruction. An object noun is kept when its synonym also names
    another active object of the same colour (say "block" for a red cube beside a red brick-shaped block), so
    every referring expression stays unique in its scene. Draws: the replacements applied and the classes
    kept for that reason. Applied to the instruction text by the worker (synth.language.substitute)."""

    description = "word classes of the instruction replaced by synonyms"
    stage = LANGUAGE
    rate: float = key(0.5, "probability that each word class is replaced by a synonym; in [0, 1]")
    classes: tuple[str, ...] = key(
        tuple(CLASSES), "word classes that may be replaced (object nouns, target words, verbs; default: all)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [c for c in self.classes if c not in CLASSES]
        if bad or not 0.0 <= self.rate <= 1.0:
            raise ConfigError(
                f"randomizers.synonyms: rate={self.rate} (give 0..1), unknown classes {bad}; "
                f"classes from {list(CLASSES)}"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        active = [o for o in scene.objects if o.active]
        applied: dict[str, str] = {}
        kept = []
        for c in CLASSES:  # a fixed order and two draws per class, whatever is chosen
            u, word = float(rng.uniform()), str(pick(rng, CLASSES[c]))
            if c not in self.classes or u >= self.rate:
                continue
            if c in NOUNS:
                colours = {o.colour for o in active if noun(o) == c}
                if any(noun(o) != c and o.colour in colours and word in names(noun(o)) for o in active):
                    kept.append(c)
                    continue
            applied[c] = word
        words = [(c, w) for c, w in applied.items()] + [(p, p) for c in applied for p in KEEP.get(c, ())]
        return scene.perturbed(words=tuple(words)), {"words": applied, "kept": kept}
