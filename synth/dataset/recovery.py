"""Recovery of a killed commit: the dataset brought back to exactly its last completed commit.

A commit renames its files into place (each first written as PENDING + its name), appends its manifest line,
rewrites info.json, tasks.parquet and stats.json, and writes `.synth/progress.json` last. A process killed at any
point before that last write leaves pending files, files numbered beyond progress's counts, manifest lines beyond
its commits, or metadata one commit ahead: `recover` removes or rolls back each, so the next run (or
`synth repair`) starts from what progress.json records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synth.dataset import integrity
from synth.dataset.durable import TEMPORARY, write_atomic, write_json
from synth.dataset.stats import StatsAccumulator, stats_from_row, stats_to_json

PENDING = ".pending-"  # the name prefix of a file a commit has written but not yet renamed into place


def recover(root: Path, progress: dict) -> None:
    """Remove what a killed commit left beyond the last recorded one (pending files, files ahead of
    `.synth/progress.json`), so the dataset is exactly as of its last completed commit."""
    drop_uncommitted(root, progress)
    _restore_meta(root, progress)


def drop_uncommitted(root: Path, progress: dict) -> None:
    """Delete pending files, temporary files of killed writes, files numbered beyond `progress`'s counts, and
    manifest lines beyond its commits."""
    for f in [*root.glob(f"**/{PENDING}*"), *root.glob(f"**/{TEMPORARY}")]:
        if f.is_file():
            f.unlink()
    integrity.keep(root, int(progress.get("commits", 0)))
    for pattern, limit in (
        ("data/chunk-*/file-*.parquet", progress["files"]),
        ("meta/episodes/chunk-*/file-*.parquet", progress["files"]),
        ("videos/*/chunk-*/file-*.mp4", progress["files"]),
        ("meta/synth/attempts/chunk-*/file-*.parquet", progress.get("attempt_files", 0)),
    ):
        for f in root.glob(pattern):
            if integrity.file_number(f) >= limit:
                f.unlink()


def _restore_meta(root: Path, progress: dict) -> None:
    """info.json, tasks.parquet and stats.json as of the last recorded commit: a commit writes them after
    renaming its files and before progress.json, so a kill in between leaves them a commit ahead."""
    info_path = root / "meta" / "info.json"
    if not info_path.exists():
        return
    n, n_tasks = int(progress["episodes"]), int(progress.get("tasks", 0))
    tasks_path = root / "meta" / "tasks.parquet"
    if tasks_path.exists():  # tasks.parquet is written before info.json: it can be ahead when info is not
        df = pd.read_parquet(tasks_path)
        if (df["task_index"] >= n_tasks).any():
            write_atomic(tasks_path, lambda path: df[df["task_index"] < n_tasks].to_parquet(path))
    info = json.loads(info_path.read_text())
    if (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (n, progress["frames"], n_tasks):
        return  # the kill did not land in that window
    acc = StatsAccumulator()
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            acc.add(stats_from_row(row))
    if n:
        write_json(root / "meta" / "stats.json", stats_to_json(acc.result()))
    info.update(total_episodes=n, total_frames=int(progress["frames"]), total_tasks=n_tasks, splits={"train": f"0:{n}"})
    write_json(info_path, info)
