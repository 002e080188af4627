"""Evaluation reports: Wilson intervals, report.json / report.md, and plots a person can look at."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def cell(
    successes: int,
    n: int,
    expert: int | None,
    expert_n: int | None,
    reasons: dict,
    misses: list[tuple[bool, float, float, float, int]] | None = None,
) -> dict:
    """One axis' numbers; `misses`: per episode (succeeded, close miss [m] and close height [m], nan when the
    gripper never closed: see closed_loop.close_offset, approach offset [m], nan when the hand never came down on the
    object: see closed_loop.approach_offset, and how many times the gripper was told to close)."""
    lo, hi = wilson(successes, n)
    out = {
        "episodes": n,
        "successes": successes,
        "rate": successes / n if n else 0.0,
        "ci95": [lo, hi],
        "failures": reasons,
    }
    if misses:  # where the hand was, sideways and in height, when the policy first closed the gripper [cm]
        cm = [[round(100 * v, 2) if np.isfinite(v) else None for v in (m, h, o)] for _, m, h, o, _ in misses]
        out["close_miss_cm"] = [m for m, _, _ in cm]
        out["close_height_cm"] = [h for _, h, _ in cm]  # the TCP's height above the object's centre then
        out["approach_offset_cm"] = [o for _, _, o in cm]  # how far off the object the hand came down
        out["won"] = [m[0] for m in misses]  # per episode, in the same order
        out["closes"] = [int(n) for *_, n in misses]  # more than one: the policy let go and grasped again
    if expert is not None and expert_n:
        out["expert_rate"] = expert / expert_n
        out["expert_ci95"] = list(wilson(expert, expert_n))
    return out


def median_cm(c: dict, key: str, won: bool | None = None) -> str:
    """A cell's median of the per-episode list `key` [cm] (close_miss_cm, close_height_cm, approach_offset_cm) over
    its episodes where it was measured, only the won (or failed) ones when `won` is given; "-" when there are none."""
    values, oks = c.get(key, []), c.get("won", [])
    got = [v for i, v in enumerate(values) if v is not None and (won is None or oks[i] == won)]
    return f"{np.median(got):.1f}" if got else "-"


def retried(c: dict) -> str:
    """The string "k (w)": a cell's episodes in which the gripper was told to close more than once, and how many
    of those were won; "-" for reports from before closes were counted."""
    if "closes" not in c:
        return "-"
    again = [i for i, n in enumerate(c["closes"]) if n > 1]
    return f"{len(again)} ({sum(c['won'][i] for i in again)})"


def markdown(report: dict) -> str:
    cells = report["axes"]
    base = cells.get("in_distribution", {}).get("rate")
    lines = [
        f"# Evaluation of `{report['policy']}` on {report['task']}",
        "",
        f"{report['episodes']} episodes per axis, seeds from {report['seed']}"
        + (
            f" (the reserved seed; {report['reserved']['earlier']} earlier look(s) at it), "
            if report.get("reserved")
            else ", "
        )
        + (
            f"policy asked every step, chunks averaged (temporal ensemble, m={report['ensemble']:g})"
            if report.get("ensemble")
            else f"chunk executed {report['execute']} steps before replanning"
        )
        + f", {report['sampling_steps']} Euler steps"
        + f" from noise of standard deviation {report.get('temperature', 1.0):g}.",
        "",
        "| axis | success | 95% CI | drop vs in-dist | expert | failures | close miss, median cm (won / failed) "
        "| close height, median cm (won / failed) | approach offset, median cm | closed again (won) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in cells.items():
        drop = "" if base is None or name == "in_distribution" else f"{100 * (base - c['rate']):+.1f} pts"
        expert = f"{100 * c['expert_rate']:.0f}%" if "expert_rate" in c else "-"
        fails = ", ".join(f"{k} {v}" for k, v in sorted(c["failures"].items())) or "-"
        miss = " / ".join(median_cm(c, "close_miss_cm", won) for won in (True, False))
        height = " / ".join(median_cm(c, "close_height_cm", won) for won in (True, False))
        lines.append(
            f"| {name} | {100 * c['rate']:.1f}% ({c['successes']}/{c['episodes']}) | "
            f"{100 * c['ci95'][0]:.0f}-{100 * c['ci95'][1]:.0f}% | {drop} | {expert} | {fails} | {miss} | {height} "
            f"| {median_cm(c, 'approach_offset_cm')} | {retried(c)} |"
        )
    return "\n".join(lines) + "\n"


def write(out: Path, report: dict, run: Path | None = None) -> None:
    """report.json, report.md, success.png and (from the run's log) training.png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    plot_axes(out / "success.png", report)
    if run is not None:
        plot_training(run, out / "training.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_axes(path: Path, report: dict) -> None:
    """Success per axis with 95% intervals; the expert's rate on the same cells as a marker."""
    plt = _plt()
    names = list(report["axes"])
    rates = [report["axes"][n]["rate"] for n in names]
    lo = [r - report["axes"][n]["ci95"][0] for n, r in zip(names, rates, strict=True)]
    hi = [report["axes"][n]["ci95"][1] - r for n, r in zip(names, rates, strict=True)]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names)), 4))
    ax.bar(range(len(names)), rates, yerr=[lo, hi], capsize=4, color="#4c72b0", label="policy")
    ex = [(i, report["axes"][n]["expert_rate"]) for i, n in enumerate(names) if "expert_rate" in report["axes"][n]]
    if ex:
        ax.scatter([i for i, _ in ex], [r for _, r in ex], marker="_", s=400, color="k", label="scripted expert")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(f"{report['task']}: success per variation axis")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(run: Path, path: Path | None = None) -> Path | None:
    """A plot (default <run>/train.png) of a run's log.jsonl: loss (log scale) and learning rate by step."""
    log = run / "log.jsonl"
    if not log.is_file():
        return None
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not recs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    marker = "o" if len(recs) <= 30 else None  # a short run's few points stay visible
    ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], color="#4c72b0", marker=marker, markersize=3)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax2 = ax.twinx()
    ax2.plot(
        [r["step"] for r in recs], [r["lr"] for r in recs], color="#dd8452", alpha=0.6, marker=marker, markersize=2
    )
    ax2.set_ylabel("learning rate")
    fig.tight_layout()
    path = path or run / "train.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
