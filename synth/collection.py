"""Several embodiments in one dataset: `synth generate embodiment=[panda,ur5e] n=1000 out=data/mix`.

A body's state and action have their own sizes and names, and a LeRobot v3.0 dataset holds one shape per
feature, so the dataset is one LeRobot part per body, `out/<body>/` (each readable by LeRobot as-is, with
its own embodiment card), and `out/collection.json` naming them. The n episodes are shared out evenly in
the order given; every part uses the same root seed, so a part's episode i depends only on (seed, body, i).
`synth train data=out` trains on all parts (equal weights unless given), `synth inspect out=out` reports each.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from synth import embodiment
from synth.errors import ConfigError

MANIFEST = "collection.json"


def bodies(args: list[str]) -> tuple[list[str], list[str]]:
    """(the bodies of an `embodiment=[a,b,...]` override, the other overrides); ([], args) without one."""
    out, rest = [], []
    for a in args:
        m = re.fullmatch(r"embodiment=\[(.*)\]", a)
        if m:
            out = [b.strip() for b in m.group(1).split(",") if b.strip()]
        else:
            rest.append(a)
    return out, rest


def shares(n: int, k: int) -> list[int]:
    """n episodes shared out over k parts as evenly as possible (the later parts take the remainder)."""
    return [n * (i + 1) // k - n * i // k for i in range(k)]


def generate(names: list[str], args: list[str]) -> list[Path]:
    """Write (or resume) the collection; returns the part directories."""
    from synth.config import compose_config, settings
    from synth.generate import check_out
    from synth.generate import generate as run

    if len(set(names)) != len(names) or len(names) < 2:
        raise ConfigError(f"embodiment={names}: give two or more different embodiments, e.g. embodiment=[panda,ur5e]")
    for name in names:  # every body is known before anything is written
        embodiment.load(name)
    first = settings(compose_config([*args, f"embodiment={names[0]}"]))  # checks every key once
    root = Path(first.out)
    check_out(str(root))
    manifest = {"embodiments": names, "parts": names, "n": first.n, "seed": first.seed}
    path = root / MANIFEST
    if path.is_file() and json.loads(path.read_text())["embodiments"] != names and not first.overwrite:
        raise ConfigError(f"out={root} holds a collection of other embodiments; use another out= or overwrite=true")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)  # written first, so an interrupted run resumes as a collection
    for name, n in zip(names, shares(first.n, len(names)), strict=True):
        if n == 0:
            continue
        s = settings(compose_config([*args, f"embodiment={name}", f"out={root / name}", f"n={n}"]))
        run(s)
    return [root / name for name in names]


def parts(root: str | Path) -> list[Path] | None:
    """The part directories of a collection, or None when `root` is a plain dataset."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    return [Path(root) / p for p in json.loads(path.read_text())["parts"]]


def expand(data: tuple[str, ...], weights: tuple[float, ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Datasets for training with collections replaced by their parts, each taking an equal share of the
    collection's weight (weights default to 1 per given dataset)."""
    weights = weights or tuple(1.0 for _ in data)
    if len(weights) != len(data):
        return data, weights  # the caller reports the mismatch
    out_d, out_w = [], []
    for d, w in zip(data, weights, strict=True):
        ps = parts(d)
        found = [p for p in ps or [] if (p / "meta" / "info.json").is_file()]
        if ps is None:
            out_d.append(d)
            out_w.append(w)
        elif not found:
            raise ConfigError(f"data={d}: a collection with no written part yet; run its `synth generate` first")
        else:
            out_d += [str(p) for p in found]
            out_w += [w / len(found)] * len(found)
    return tuple(out_d), tuple(out_w)
