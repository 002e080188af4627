"""Several bodies or control rates in one dataset: `synth generate embodiment=[panda,ur5e] n=1000` or
`control_hz=[5,10,20]` (or both: every combination).

A body's state and action have their own sizes and names, and a LeRobot v3.0 dataset holds one shape per
feature and one fps, so the dataset is one LeRobot part per body and rate, `out/<part>/` (each readable by
LeRobot as-is, with its own embodiment card: `panda`, `10hz`, `panda_10hz`), and `out/collection.json`
naming them. The n episodes are shared out evenly in the order given; every part uses the same root seed,
so a part's episode i depends only on (seed, part, i). `synth train data=out` trains on all parts (equal
weights unless given), `synth inspect out=out` reports each.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from synth.errors import ConfigError

MANIFEST = "collection.json"


def split(args: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The parts asked for by list overrides `embodiment=[a,b,...]` and/or `control_hz=[5,10,...]` as
    (part name, its overrides), one per combination, and the other overrides; ([], args) without lists."""
    lists: dict[str, list[str]] = {}
    rest = []
    for a in args:
        m = re.fullmatch(r"(embodiment|control_hz)=\[(.*)\]", a)
        if m:
            lists[m.group(1)] = [v.strip() for v in m.group(2).split(",") if v.strip()]
        else:
            rest.append(a)
    if not lists:
        return [], args
    for key, values in lists.items():
        if len(set(values)) != len(values) or len(values) < 2:
            raise ConfigError(f"{key}={values}: give two or more different values, e.g. {key}={EXAMPLES[key]}")
    out = []
    for body in lists.get("embodiment", [""]):
        for hz in lists.get("control_hz", [""]):
            name = "_".join(p for p in (body, f"{float(hz):g}hz" if hz else "") if p)
            out.append((name, [f"embodiment={body}"] * bool(body) + [f"control_hz={hz}"] * bool(hz)))
    return out, rest


EXAMPLES = {"embodiment": "embodiment=[panda,ur5e]", "control_hz": "control_hz=[5,10,20]"}


def shares(n: int, k: int) -> list[int]:
    """n episodes shared out over k parts as evenly as possible (the later parts take the remainder)."""
    return [n * (i + 1) // k - n * i // k for i in range(k)]


def generate(part_list: list[tuple[str, list[str]]], args: list[str]) -> list[Path]:
    """Write (or resume) the collection; returns the part directories."""
    from synth.config import compose_config, settings
    from synth.generate import check_out
    from synth.generate import generate as run

    checked = [settings(compose_config([*args, *ov])) for _, ov in part_list]  # every part's keys, up front
    root = Path(checked[0].out)
    check_out(str(root))
    names = [name for name, _ in part_list]
    manifest = {"parts": names, "overrides": {n: ov for n, ov in part_list}, "n": checked[0].n, "seed": checked[0].seed}
    path = root / MANIFEST
    if path.is_file() and json.loads(path.read_text())["parts"] != names and not checked[0].overwrite:
        raise ConfigError(f"out={root} holds a collection of other parts; use another out= or overwrite=true")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)  # written first, so an interrupted run resumes as a collection
    for (name, ov), n in zip(part_list, shares(checked[0].n, len(part_list)), strict=True):
        if n > 0:
            run(settings(compose_config([*args, *ov, f"out={root / name}", f"n={n}"])))
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
