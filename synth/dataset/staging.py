"""A worker's finished shard, staged next to the dataset until the main process commits it.

A shard directory appears under its final name only when complete (written as *.tmp, then renamed),
so a killed worker leaves either a whole shard or a temporary directory that is deleted on resume.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synth.types import Episode


def shard_dir(root: Path, k: int) -> Path:
    return root / ".synth" / "staging" / f"shard-{k:06d}"


def _column(values: np.ndarray) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values)
    flat = pa.array(values.reshape(-1).astype(values.dtype))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def write_shard(
    root: Path,
    k: int,
    episodes: list[Episode],
    attempts: list[dict],
    video_writer=None,
    fps: float = 20.0,
    codec: str = "h264",
) -> Path:
    """Stage episodes (frames, per-episode facts, videos) and attempt records of shard k."""
    final = shard_dir(root, k)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if episodes:
        cols: dict[str, np.ndarray] = {
            "episode": np.concatenate([np.full(e.length, j, np.int64) for j, e in enumerate(episodes)]),
            "frame_index": np.concatenate([np.arange(e.length, dtype=np.int64) for e in episodes]),
            "observation.state": np.concatenate([e.state for e in episodes]),
            "action": np.concatenate([e.action for e in episodes]),
        }
        for key in episodes[0].labels:
            cols[key] = np.concatenate([np.asarray(e.labels[key]) for e in episodes])
        pq.write_table(pa.table({k2: _column(v) for k2, v in cols.items()}), tmp / "frames.parquet")
        for cam in episodes[0].images:
            if video_writer is None:
                raise ValueError("cameras given but no video writer")
            writer = video_writer(tmp / f"{cam}.mp4", fps, *episodes[0].images[cam].shape[1:3], codec=codec)
            for e in episodes:
                writer.write(e.images[cam])
            writer.close()
    stats = shard_stats(episodes, fps)
    with open(tmp / "episodes.jsonl", "w") as f:
        for e, st in zip(episodes, stats, strict=True):
            rec = {"attempt": e.attempt, "instruction": e.instruction, "length": e.length, "meta": e.meta}
            rec["stats"] = st
            f.write(json.dumps(rec) + "\n")
    with open(tmp / "attempts.jsonl", "w") as f:
        for a in attempts:
            f.write(json.dumps(a) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


OFFSET_COLUMNS = ("index", "episode_index", "task_index")  # zero-based here, shifted when committed


def episode_stats(e: Episode, fps: float) -> dict:
    """LeRobot per-episode stats of every per-frame column (JSON lists), computed in the worker.

    index, episode_index and task_index are taken as 0-based; the commit adds their offsets.
    """
    from synth.dataset import format as fmt

    T = e.length
    arrays = {
        "observation.state": np.asarray(e.state),
        "action": np.asarray(e.action),
        **{k: np.asarray(v) for k, v in e.labels.items()},
        "timestamp": (np.arange(T) / fps).astype(np.float32),
        "frame_index": np.arange(T),
        "index": np.arange(T),
        "episode_index": np.zeros(T, np.int64),
        "task_index": np.zeros(T, np.int64),
    }
    stats = fmt.episode_stats(arrays, {})
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def shard_stats(episodes: list[Episode], fps: float) -> list[dict]:
    """episode_stats of every episode of a shard, computed for all of them at once (the same numbers)."""
    from synth.dataset import format as fmt

    if not episodes:
        return []
    lengths = np.array([e.length for e in episodes])
    frame = np.concatenate([np.arange(n) for n in lengths])
    zeros = np.zeros(len(frame), np.int64)
    arrays = {
        "observation.state": np.concatenate([np.asarray(e.state) for e in episodes]),
        "action": np.concatenate([np.asarray(e.action) for e in episodes]),
        **{k: np.concatenate([np.asarray(e.labels[k]) for e in episodes]) for k in episodes[0].labels},
        "timestamp": (frame / fps).astype(np.float32),
        "frame_index": frame,
        "index": frame,
        "episode_index": zeros,
        "task_index": zeros,
    }
    per = {k: fmt.episodes_array_stats(v, lengths) for k, v in arrays.items() if v.dtype.kind in "biuf"}
    return [{k: {s: v[j].tolist() for s, v in st.items()} for k, st in per.items()} for j in range(len(episodes))]


def read_shard(path: Path) -> tuple[pa.Table | None, list[dict], list[dict]]:
    """(frames table or None, episode records, attempt records) of a staged shard."""
    frames = pq.read_table(path / "frames.parquet") if (path / "frames.parquet").exists() else None
    eps = [json.loads(line) for line in open(path / "episodes.jsonl")]
    atts = [json.loads(line) for line in open(path / "attempts.jsonl")]
    return frames, eps, atts


def clean_partial(root: Path) -> None:
    """Delete temporary shard directories left by killed workers."""
    staging = root / ".synth" / "staging"
    if staging.exists():
        for p in staging.glob("shard-*.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
