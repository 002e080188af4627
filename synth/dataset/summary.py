"""`synth inspect`: what a dataset holds, how generation went, and what the randomizers covered."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from synth.errors import ConfigError

MAX_ROWS = 200_000  # coverage is computed on at most this many attempts (evenly spaced)


def _leaves(d, prefix="") -> dict:
    """Scalar leaves of a nested draw record: {"object_pose.x": 0.41, "object_shape.shape": "box"}."""
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_leaves(v, f"{prefix}{k}." if prefix or k else k))
    elif isinstance(d, list):
        if d and all(isinstance(x, dict) for x in d):
            out[prefix + "count"] = len(d)
    elif isinstance(d, bool | str | int | float):
        out[prefix.rstrip(".")] = d
    return out


def _table(root: Path, pattern: str, columns: list[str]) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in columns}
    for path in sorted(root.glob(pattern)):
        t = pq.read_table(path, columns=columns)
        for c in columns:
            cols[c].extend(t[c].to_pylist())
    return cols


def summarize(out: str) -> str:
    """The `synth inspect` report of the dataset (or one part of a collection) at `out`, as text."""
    root = Path(out)
    from synth.dataset.integrity import check

    check(root, "inspect")  # sizes and metadata: a damaged dataset is named, never reported healthy
    if not (root / "meta" / "info.json").exists():
        raise ConfigError(
            f"out={out} is not a synth dataset (no meta/info.json); give the directory `synth generate` wrote"
        )
    info = json.loads((root / "meta" / "info.json").read_text())
    synth = json.loads((root / "meta" / "synth.json").read_text())
    prog_path = root / ".synth" / "progress.json"
    prog = json.loads(prog_path.read_text()) if prog_path.exists() else {}
    lines = [f"dataset {root}  (LeRobot {info['codebase_version']}, task {synth['task']}, robot {info['robot_type']})"]
    fps = info["fps"]
    cams = [k.split(".")[-1] for k, f in info["features"].items() if f["dtype"] == "video"]
    hours = info["total_frames"] / fps / 3600
    lines.append(
        f"  episodes {info['total_episodes']}  frames {info['total_frames']} ({hours:.2f} h at {fps:g} Hz)  "
        f"distinct instructions {info['total_tasks']}  cameras {cams or 'none (state only)'}"
    )
    eps = _table(root, "meta/episodes/chunk-*/file-*.parquet", ["length"])
    if eps["length"]:
        L = np.asarray(eps["length"]) / fps
        lines.append(f"  episode length [s]: median {np.median(L):.2f}  min {L.min():.2f}  max {L.max():.2f}")
    att = _table(root, "meta/synth/attempts/chunk-*/file-*.parquet", ["success", "reason", "draws", "seconds"])
    n = len(att["success"])
    if n:
        ok = np.asarray(att["success"])
        lines.append(f"\ngeneration: {n} attempts, {ok.sum()} written, success rate {ok.mean():.1%}")
        reasons = Counter(r for r in att["reason"] if r)
        for r in synth.get("failure_reasons", []):
            lines.append(f"  {r:15s} {reasons.get(r, 0):8d}  {reasons.get(r, 0) / n:6.1%}")
        for r in sorted(set(reasons) - set(synth.get("failure_reasons", []))):
            lines.append(f"  {r:15s} {reasons[r]:8d}  {reasons[r] / n:6.1%}")
        secs = defaultdict(list)
        for s in att["seconds"]:
            for k, v in json.loads(s).items():
                secs[k].append(v)
        lines.append(
            "  median seconds per attempt: " + "  ".join(f"{k} {np.median(v) * 1e3:.1f} ms" for k, v in secs.items())
        )
        if "focus" in synth:
            lines.extend(_focus(synth["focus"], att))
        lines.append("\nrandomization coverage (all attempts; success rate per value or per quartile):")
        lines.extend(_coverage(att, ok))
    elif prog:
        lines.append(f"\ngeneration: {prog.get('attempts', 0)} attempts")
    return "\n".join(lines)


def _coverage(att: dict, ok: np.ndarray) -> list[str]:
    idx = np.linspace(0, len(ok) - 1, min(len(ok), MAX_ROWS)).astype(int)
    values: dict[str, list] = defaultdict(list)
    succ: dict[str, list] = defaultdict(list)
    for i in idx:
        for k, v in _leaves(json.loads(att["draws"][i])).items():
            values[k].append(v)
            succ[k].append(bool(ok[i]))
    lines = []
    for k in sorted(values):
        v, s = values[k], np.asarray(succ[k])
        if all(isinstance(x, str | bool) for x in v):
            parts = []
            for val, c in Counter(v).most_common(12):
                mask = np.asarray([x == val for x in v])
                parts.append(f"{val} {c / len(v):.0%} (ok {s[mask].mean():.0%})")
            lines.append(f"  {k:28s} " + ", ".join(parts))
        else:
            x = np.asarray(v, float)
            q = np.quantile(x, [0, 0.25, 0.5, 0.75, 1])
            bins = np.clip(np.searchsorted(q[1:-1], x, side="right"), 0, 3)
            rates = " ".join(f"{s[bins == b].mean():.0%}" if (bins == b).any() else "-" for b in range(4))
            lines.append(f"  {k:28s} min {q[0]:9.4g}  median {q[2]:9.4g}  max {q[4]:9.4g}   ok by quartile {rates}")
    return lines


def _focus(rec: dict, att: dict) -> list[str]:
    """The focused fields (synth.focus): per bin of the range, the default share (a uniform draw), the share the
    focus weights aim at, and the share drawn in this dataset's attempts."""
    lines = [
        f"\nfocus: {rec['file']} (sha256 {rec['sha256'][:12]}), floor {rec['floor']:g}, "
        f"{rec['candidates']} candidate scenes per attempt; share of attempts per bin: default / focus / drawn"
    ]
    draws = [json.loads(d) for d in att["draws"]]
    for f in rec["fields"]:
        w = np.asarray(f["weights"], float)
        edges = np.linspace(f["lo"], f["hi"], len(w) + 1)
        got = [(d.get(f["name"]) or {}).get(f["key"]) for d in draws]
        x = np.asarray([v for v in got if isinstance(v, int | float)], float)
        drawn = np.histogram(x, bins=edges)[0] / max(len(x), 1)
        lines.append(f"  {f['name']}.{f['key']}  [{f['lo']:g}, {f['hi']:g}] in {len(w)} bins")
        for b in range(len(w)):
            lines.append(
                f"    {edges[b]:9.4g} .. {edges[b + 1]:<9.4g} {1 / len(w):6.1%} / {w[b] / len(w):6.1%} / "
                f"{drawn[b]:6.1%}   (eval: {f['failures'][b]} of {f['episodes'][b]} failed)"
            )
    return lines
