"""Eval-driven generation (`synth generate focus=<eval report.json>`): draw more scenes where a policy failed.

The rule. For each range field of the generator's randomizers (e.g. object_pose.x in [0.38, 0.62]) the range is
cut into BINS equal bins. Every episode of every cell of the eval report whose draw of that field lies in the
range counts in its bin (cells whose axis overrides that field are left out: their draws come from another
range). With rate_b = failures_b / episodes_b (a bin without episodes gets the field's overall rate) and
share_b = rate_b / sum(rate), the bin's weight is

    w_b = floor + (1 - floor) * BINS * share_b

so the weights average 1 over the bins (a density relative to the default, uniform draw) and no bin falls below
`floor` times its default share. A field whose episodes never failed, or failed alike in every bin, keeps w = 1
(it is not focused). The FIELDS fields with the largest spread (max w / min w) are focused; a scene's weight is
the product of its focused draws' bin weights.

Sampling (sampling-importance-resampling, SIR): attempt i draws CANDIDATES whole scenes, candidate 0 from the
default streams and candidate k from streams keyed "focus<k>/randomizer/<name>", and keeps one with probability
proportional to its weight, chosen by the stream (seed, i, "focus"). So the attempt still follows from
(seed, attempt) alone; the draws of the kept scene follow the default density times the weights, up to the
O(1/CANDIDATES) bias of SIR. Each episode's draws record {"focus": {"candidate": k, "weight": w}}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import ConfigError
from synth.randomize import Randomizer, apply, stream
from synth.types import Scene

BINS = 5  # equal bins per range field
FLOOR = 0.25  # the least weight of a bin, as a fraction of its default share
FIELDS = 3  # fields focused at most (those whose weights spread the most)
CANDIDATES = 16  # scenes drawn per attempt, one kept by weight


@dataclass(frozen=True)
class Field:
    """One focused range field: randomizer `name`'s draw `key` in [lo, hi], its bin weights (BINS,), and the eval
    counts they came from (episodes and failures per bin, overall and per axis)."""

    name: str
    key: str
    lo: float
    hi: float
    weights: tuple[float, ...]
    episodes: tuple[int, ...]
    failures: tuple[int, ...]
    per_axis: dict

    def weight(self, x: float) -> float:
        if not self.lo <= x <= self.hi:
            return 1.0
        b = min(int((x - self.lo) / (self.hi - self.lo) * len(self.weights)), len(self.weights) - 1)
        return self.weights[b]


@dataclass(frozen=True)
class Focus:
    """The weights a focus file gives the generator's randomizers (see the module docstring)."""

    file: str
    sha256: str
    fields: tuple[Field, ...]
    floor: float = FLOOR
    candidates: int = CANDIDATES

    def weight(self, draws: dict) -> float:
        """The scene's weight: the product of its focused draws' bin weights (1 for a draw outside the range)."""
        w = 1.0
        for f in self.fields:
            x = _value(draws, f.name, f.key)
            if x is not None:
                w *= f.weight(x)
        return w

    def record(self) -> dict:
        """What meta/synth.json keeps: the file, its hash, the rule's constants and every focused field."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "floor": self.floor,
            "bins": BINS,
            "candidates": self.candidates,
            "rule": "w_b = floor + (1 - floor) * bins * failure_rate_b / sum(failure_rate)",
            "fields": [dataclasses.asdict(f) for f in self.fields],
        }


def ranges(randomizers: list[Randomizer] | tuple) -> list[tuple[str, str, float, float]]:
    """(randomizer, field, low, high) of every numeric range field (a pair low < high) of the randomizers."""
    out = []
    for r in randomizers:
        for f in dataclasses.fields(r):
            v = getattr(r, f.name)
            if isinstance(v, tuple | list) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
                if not any(isinstance(x, bool) for x in v) and v[0] < v[1]:
                    out.append((r.name, f.name, float(v[0]), float(v[1])))
    return out


def load(path: str, randomizers: list[Randomizer] | tuple, task: str, floor: float = FLOOR) -> Focus:
    """The Focus of eval report `path` for a generator with these randomizers; ConfigError naming the fix."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"focus={path}: no such file; give an eval report, e.g. runs/pp/eval/default/report.json")
    raw = p.read_bytes()
    try:
        rep = json.loads(raw)
        cells = rep["axes"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"focus={path}: not an eval report.json (written by `synth eval`)") from None
    if rep.get("task") != task:
        raise ConfigError(f"focus={path} evaluated task {rep.get('task')}, not {task}; give a report of {task}")
    if not any("draws" in c and "results" in c for c in cells.values()):
        raise ConfigError(f"focus={path}: the report has no per-episode draws; evaluate again with this synth")
    fields = []
    for name, key, lo, hi in ranges(randomizers):
        n, fail = np.zeros(BINS, int), np.zeros(BINS, int)
        per_axis: dict = {}
        for axis, c in cells.items():
            if key in c.get("overrides", {}).get(name, ()):
                continue  # this axis drew the field from its own range
            for d, r in zip(c.get("draws", []), c.get("results", []), strict=False):
                x = _value(d, name, key)
                if x is None or not lo <= x <= hi:
                    continue
                b = min(int((x - lo) / (hi - lo) * BINS), BINS - 1)
                n[b] += 1
                fail[b] += r != ""
                ax = per_axis.setdefault(axis, {"episodes": [0] * BINS, "failures": [0] * BINS})
                ax["episodes"][b] += 1
                ax["failures"][b] += int(r != "")
        if not fail.sum():
            continue
        rate = np.where(n > 0, fail / np.maximum(n, 1), fail.sum() / n.sum())
        w = floor + (1 - floor) * BINS * rate / rate.sum()
        if w.max() - w.min() < 1e-6:  # failures everywhere alike: nothing to shift
            continue
        fields.append(
            Field(name, key, lo, hi, tuple(w.round(6).tolist()), tuple(n.tolist()), tuple(fail.tolist()), per_axis)
        )
    fields.sort(key=lambda f: -max(f.weights) / min(f.weights))
    return Focus(str(p), hashlib.sha256(raw).hexdigest(), tuple(fields[:FIELDS]), floor)


def _value(draws: dict, name: str, key: str) -> float | None:
    """Randomizer `name`'s numeric draw `key` in a draw record, or None."""
    d = draws.get(name)
    x = d.get(key) if isinstance(d, dict) else None
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def key(candidate: int) -> str:
    """The stream key prefix of a candidate scene: candidate 0 is the default draw."""
    return "randomizer" if candidate == 0 else f"focus{candidate}/randomizer"


def draw(randomizers: list[Randomizer], scene: Scene, seed: int, attempt: int, focus: Focus) -> tuple[Scene, dict]:
    """apply() under a focus: `focus.candidates` scenes drawn, one kept with probability proportional to its
    weight (from the stream (seed, attempt, "focus")); its draws get {"focus": {"candidate", "weight"}}."""
    drawn = [apply(randomizers, scene, seed, attempt, key(k)) for k in range(focus.candidates)]
    w = np.array([focus.weight(d) for _, d in drawn])
    u = stream(seed, attempt, "focus").random()
    k = min(int(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right")), len(w) - 1)
    sc, d = drawn[k]
    return sc, {**d, "focus": {"candidate": k, "weight": float(w[k])}}


def candidate(draws: dict) -> int:
    """Which candidate an episode's draws came from (0 without a focus)."""
    return int((draws.get("focus") or {}).get("candidate", 0))
