"""Variation axes of evaluation: each is the training data's generator config with one thing changed.

An axis names randomizer overrides (merged into the dataset's randomizer nodes, added when the dataset did
not use that randomizer), the held-out instruction paraphrases, or a control-frequency factor. Ranges are
chosen outside (or at the edge of) the defaults a dataset is generated with, so they are shifts, not resamples.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from synth.palette import HELD_OUT_TABLE_COLOURS
from synth.registry import RANDOMIZERS


@dataclass(frozen=True)
class Axis:
    description: str
    randomizers: dict = field(default_factory=dict)  # {randomizer: {field: value}}
    held_out: bool = False  # the held-out paraphrases
    control_hz_factor: float = 1.0


AXES: dict[str, Axis] = {
    "in_distribution": Axis("the training distribution, new seeds"),
    "position": Axis("object placed beyond the trained x range (0.62-0.68 m)", {"object_pose": {"x": [0.62, 0.68]}}),
    "object_instance": Axis("smaller, unseen object sizes (scale 0.7-0.85)", {"object_shape": {"scale": [0.7, 0.85]}}),
    "lighting": Axis("dim, strongly tinted light", {"lighting": {"intensity": [0.15, 0.35], "tint": [-0.45, 0.45]}}),
    "background": Axis("unseen table colours", {"table": {"colours": list(HELD_OUT_TABLE_COLOURS)}}),
    "texture": Axis(
        "fine checker and stripe textures on table, floor and walls",
        {"textures": {"patterns": ["checker", "stripes"], "cells": [12, 20]}},
    ),
    "camera": Axis(
        "camera drifted 3-6 cm and re-aimed", {"camera_jitter": {"position": [0.03, 0.06], "lookat": [0.03, 0.06]}}
    ),
    "paraphrase": Axis("held-out instruction paraphrases", held_out=True),
    "distractors": Axis("more distractors (3-5)", {"distractors": {"count": [3, 5]}}),
    "control_hz": Axis("control frequency x1.25 (the prompt says so)", control_hz_factor=1.25),
}


def demonstration_only() -> list[str]:
    """Randomizers declared evaluation=False (they change how the expert demonstrates, not the scene): evaluation
    leaves them out, so that the expert's upper bound (and the episode time limit, from its plans) is the plain
    expert's."""
    return RANDOMIZERS.where(evaluation=False)


def first_attempt(name: str) -> int:
    """The first attempt index of axis `name`'s scenes: each axis draws its own scenes (attempts first ..
    first + episodes - 1 of the eval seed), so that an axis is not the in-distribution scenes with one thing
    changed. in_distribution starts at 0; the others at a block of 10^6 fixed by the name alone (CRC-32), so adding
    an axis moves no other axis' scenes."""
    return 0 if name == "in_distribution" else (zlib.crc32(name.encode()) % 1000 + 1) * 1_000_000


def randomizer_nodes(base: dict, axis: Axis) -> dict:
    """The dataset's randomizer nodes {name: {field: value}} with the axis' overrides merged in, less the
    demonstration_only() ones."""
    skip = demonstration_only()
    out = {k: dict(v or {}) for k, v in (base or {}).items() if k not in skip}
    for name, over in axis.randomizers.items():
        out.setdefault(name, {}).update(over)
    return out
