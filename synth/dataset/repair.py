"""`synth verify` and `synth repair`: name the damaged files of a dataset; cut it back to its last intact commit.

Repair finds the first commit (a manifest line) with a file missing, resized or changed, and makes the
dataset what it was just before it: `.synth/progress.json` as recorded before that commit (the commit point,
written first), the manifest and every committed file beyond it dropped, and the rewritten meta files
(tasks.parquet, info.json, stats.json) rebuilt from the intact meta/episodes files. Rerunning the same
`synth generate` command then regenerates the rest exactly: every episode follows from (seed, attempt).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synth.dataset import format as fmt
from synth.dataset import integrity, lock
from synth.dataset.stats import StatsAccumulator, stats_from_row, stats_to_json
from synth.errors import ConfigError

PROGRESS = ".synth/progress.json"


def _dataset(out: str, what: str) -> Path:
    root = Path(out)
    if not (root / ".synth" / "config.json").exists():
        raise ConfigError(f"out={out} is not a dataset written by synth generate (no .synth/config.json)")
    who = lock.busy(root)
    if who:
        raise ConfigError(f"out={out} is being written by {who}; run synth {what} once it has finished")
    return root


def verify(out: str) -> tuple[bool, list[str]]:
    """(healthy, lines): one line per damaged file, or one line saying what was checked."""
    root = _dataset(out, "verify")
    found = integrity.damage(root, full=True, uncommitted=True)
    if not found:
        prog = json.loads((root / PROGRESS).read_text()) if (root / PROGRESS).exists() else {}
        n = len(integrity.recorded(root, prog)) if prog else 0
        return True, [
            f"out={out}: healthy: {prog.get('episodes', 0)} episodes, {prog.get('frames', 0)} frames, "
            f"{n} committed files match their size and checksum; LeRobot invariants hold"
        ]
    by_file: dict[str, list[str]] = {}
    for rel, why in found:
        by_file.setdefault(rel, []).append(why)
    return False, [
        f"damaged: {rel}: {whys[0]}" + (f" (and {len(whys) - 1} more problems)" if len(whys) > 1 else "")
        for rel, whys in by_file.items()
    ] + [f"run `synth repair out={out}` to cut the dataset back to its last intact commit"]


def repair(out: str) -> str:
    """Cut the dataset at `out` back to its last intact commit; returns a one-line summary."""
    from synth.dataset.durable import write_json
    from synth.dataset.recovery import drop_uncommitted

    root = _dataset(out, "repair")
    lock.acquire(root, "synth repair")
    try:
        progress = _progress(root)
        entries = integrity.entries(root, int(progress.get("commits", 0)))
        cut, why = len(entries), ""
        for i, e in enumerate(entries):
            bad = [
                (rel, w) for rel, (size, d) in e["files"].items() for _, w in integrity.file_damage(root, rel, size, d)
            ]
            if bad:
                cut, why = i, f"{bad[0][0]}: {bad[0][1]}"
                break
        if not entries and progress["episodes"] and integrity.damage(root, full=False, uncommitted=False):
            raise ConfigError(
                f"out={out} has no manifest (written before synth recorded checksums), so it cannot be cut back; "
                "regenerate it with overwrite=true"
            )
        new = entries[cut]["before"] if cut < len(entries) else progress
        write_json(root / PROGRESS, new)  # the commit point first: what follows only removes and rebuilds
        drop_uncommitted(root, new)
        shutil.rmtree(root / ".synth" / "staging", ignore_errors=True)
        _rebuild_meta(root, new)
    finally:
        lock.release(root)
    if cut == len(entries):
        return f"out={out}: no committed file damaged; metadata rebuilt ({new['episodes']} episodes)"
    return (
        f"out={out}: cut back to commit {cut} ({new['episodes']} episodes, {new['frames']} frames), dropping "
        f"{len(entries) - cut} commits from the first damaged one ({why}); rerun the same synth generate "
        "command to regenerate the rest"
    )


def _progress(root: Path) -> dict:
    """progress.json, or, if it is unreadable, the progress after the manifest's last intact line."""
    try:
        return json.loads((root / PROGRESS).read_text())
    except (OSError, ValueError):
        entries = integrity.entries(root)
        if not entries:
            raise ConfigError(f"out={root}: {PROGRESS} is unreadable and there is no manifest") from None
        return entries[-1]["after"]


def _rebuild_meta(root: Path, progress: dict) -> None:
    """tasks.parquet, info.json and stats.json from the meta/episodes files as of `progress`."""
    from synth.dataset.durable import write_atomic, write_json

    tasks: dict[str, int] = {}
    acc = StatsAccumulator()
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            for t in row["tasks"]:
                tasks.setdefault(t, len(tasks))
            acc.add(stats_from_row(row))
    if len(tasks) != int(progress.get("tasks", len(tasks))):
        raise ConfigError(f"out={root}: the episodes name {len(tasks)} tasks, progress.json {progress['tasks']}")
    df = pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task"))
    write_atomic(root / "meta" / "tasks.parquet", lambda p: df.to_parquet(p))
    template = json.loads((root / ".synth" / "features.json").read_text())
    info = fmt.info(
        features=template["features"],
        fps=template["fps"],
        robot_type=template["robot_type"],
        total_episodes=int(progress["episodes"]),
        total_frames=int(progress["frames"]),
        total_tasks=len(tasks),
        has_video=bool(template["video"]),
    )
    write_json(root / "meta" / "info.json", info)
    if progress["episodes"]:
        write_json(root / "meta" / "stats.json", stats_to_json(acc.result()))
    else:
        (root / "meta" / "stats.json").unlink(missing_ok=True)
    integrity.write_meta_sums(root)
