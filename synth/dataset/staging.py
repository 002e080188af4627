"""A worker's finished shard, staged next to the dataset until the main process commits it.

A shard directory appears under its final name only when complete (written as *.tmp, then renamed),
so a killed worker leaves either a whole shard or a temporary directory that is deleted on resume. Every
file and the directory are fsynced before the rename; a staged shard that cannot be read all the same (a
disk that lied, a file cut short) is deleted on resume and run again.
It holds `frames.arrow` (every frame, with the episode's number in the shard), `episodes.arrow` (one row
per episode: attempt, instruction, length, meta as JSON and its LeRobot stats, computed here so the main
process only adds offsets), `attempts.arrow` (one row per attempt) and one mp4 per camera. The tables are
Arrow IPC files: written without encoding and read back memory-mapped, as they are read once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synth.dataset.durable import fsync
from synth.dataset.faults import fault
from synth.types import Episode, EpisodeBatch, Json, dumps

Stats = dict[str, dict[str, np.ndarray]]  # {feature: {stat: (E, *shape)}}


def shard_dir(root: Path, k: int) -> Path:
    return root / ".synth" / "staging" / f"shard-{k:06d}"


def _column(values: np.ndarray) -> pa.Array:
    """A staged column: (N,) as it is, (N, ...) as a fixed-size list named as a parquet round trip names it
    ("element"), which the data files have always carried."""
    if values.ndim == 1:
        return pa.array(values)
    flat = pa.array(values.reshape(-1).astype(values.dtype))
    size = int(np.prod(values.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(flat, type=pa.list_(pa.field("element", flat.type), size))


def write_shard(
    root: Path,
    k: int,
    episodes: list[Episode] | EpisodeBatch,
    attempts: list[dict],
    video_writer=None,
    fps: float = 20.0,
    codec: str = "h264",
    extra: dict[str, dict] | None = None,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Stage episodes (frames, per-episode facts and stats, videos) and attempt records of shard k. A list of
    Episodes may carry images (written as one video per camera); an EpisodeBatch is state and labels only.
    `extra` maps file names to JSON records staged with the shard (they appear with it or not at all);
    `finish(dir)` adds to the staged files before they are flushed and the shard appears (a merge's videos)."""
    final = shard_dir(root, k)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    images: list[dict] = []
    if isinstance(episodes, list):
        for cam in episodes[0].images if episodes else ():
            if video_writer is None:
                raise ValueError("cameras given but no video writer")
            writer = video_writer(tmp / f"{cam}.mp4", fps, *episodes[0].images[cam].shape[1:3], codec=codec)
            for e in episodes:
                writer.write(e.images[cam])
            writer.close()
        images = [e.meta.get("image_stats", {}) for e in episodes]
        batch = EpisodeBatch.of(episodes)
    else:
        batch = episodes
    if len(batch):
        cols: dict[str, np.ndarray] = {
            "episode": np.repeat(np.arange(len(batch), dtype=np.int64), batch.lengths),
            "frame_index": _frame_index(batch.lengths),
            "observation.state": batch.state,
            "action": batch.action,
            **{key: np.asarray(v) for key, v in batch.labels.items()},
        }
        _write(pa.table({k2: _column(v) for k2, v in cols.items()}), tmp / "frames.arrow")
    stats = batch_stats(batch, fps)
    if images and images[0]:
        for cam in images[0]:
            stats[f"observation.images.{cam}"] = {
                st: np.stack([np.asarray(im[cam][st]) for im in images]) for st in images[0][cam]
            }
    table = pa.table(
        {
            "attempt": pa.array(batch.attempts, pa.int64()),
            "instruction": pa.array(batch.instructions, pa.string()),
            "length": pa.array(batch.lengths, pa.int64()),
            "meta": pa.array([dumps(m if isinstance(m, Json) else _no_images(m)) for m in batch.metas], pa.string()),
            **{f"stats/{key}/{st}": _column(v) for key, s in stats.items() for st, v in s.items()},
        }
    )
    shapes = {f"stats/{key}/{st}": list(v.shape[1:]) for key, s in stats.items() for st, v in s.items()}
    _write(table.replace_schema_metadata({"shapes": json.dumps(shapes)}), tmp / "episodes.arrow")
    _write(_attempts_table(attempts), tmp / "attempts.arrow")
    for name, rec in (extra or {}).items():
        (tmp / name).write_text(json.dumps(rec, indent=2))
    if finish is not None:
        finish(tmp)
    from synth.dataset.durable import fsync, makedirs

    for f in tmp.iterdir():
        fsync(f)
    fsync(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    makedirs(final.parent)
    fsync(final.parent)
    return final


def _attempts_table(attempts: list[dict]) -> pa.Table:
    """The attempt records of a shard: attempt, success, reason, and seconds and draws as JSON."""
    return pa.table(
        {
            "attempt": pa.array([a["attempt"] for a in attempts], pa.int64()),
            "success": pa.array([bool(a["success"]) for a in attempts], pa.bool_()),
            "reason": pa.array([a["reason"] for a in attempts], pa.string()),
            "seconds": pa.array([dumps(a["seconds"]) for a in attempts], pa.string()),
            "draws": pa.array([dumps(a["draws"]) for a in attempts], pa.string()),
        }
    )


def _no_images(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "image_stats"}


OFFSET_COLUMNS = ("index", "episode_index", "task_index")  # zero-based here, shifted when committed


def _frame_index(lengths: np.ndarray) -> np.ndarray:
    """(N,) each frame's index within its episode, episodes of `lengths` (E,) concatenated."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(int(np.sum(lengths)), dtype=np.int64) - starts


def episode_stats(e: Episode, fps: float) -> dict:
    """LeRobot per-episode stats of every per-frame column (JSON lists), computed in the worker.

    index, episode_index and task_index are taken as 0-based; the commit adds their offsets.
    """
    from synth.dataset.stats import episode_stats as stats_of

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
    stats = stats_of(arrays, {})
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def batch_stats(batch: EpisodeBatch, fps: float) -> Stats:
    """episode_stats of every episode of a batch at once (the same numbers): {feature: {stat: (E, D)}}, the
    index columns 0-based."""
    from synth.dataset.stats import episodes_array_stats

    if not len(batch):
        return {}
    frame = _frame_index(batch.lengths)
    zeros = np.zeros(len(frame), np.int64)
    arrays = {
        "observation.state": batch.state,
        "action": batch.action,
        **batch.labels,
        "timestamp": (frame / fps).astype(np.float32),
        "frame_index": frame,
        "index": frame,
        "episode_index": zeros,
        "task_index": zeros,
    }
    return {k: episodes_array_stats(v, batch.lengths) for k, v in arrays.items() if v.dtype.kind in "biuf"}


def shard_stats(episodes: list[Episode], fps: float) -> list[dict]:
    """episode_stats of every episode of a shard, computed for all of them at once (the same numbers)."""
    per = batch_stats(EpisodeBatch.of(episodes), fps)
    return [{k: {s: v[j].tolist() for s, v in st.items()} for k, st in per.items()} for j in range(len(episodes))]


def table_stats(table: pa.Table) -> Stats:
    """The stats columns of a staged episodes table: {feature: {stat: (E, *shape)}}, in column order."""
    shapes = json.loads((table.schema.metadata or {}).get(b"shapes", b"{}"))
    out: Stats = {}
    for name in table.column_names:
        if name.startswith("stats/"):
            key, stat = name[len("stats/") :].rsplit("/", 1)
            col = table[name].combine_chunks()
            flat = col.flatten().to_numpy() if pa.types.is_fixed_size_list(col.type) else col.to_numpy()
            out.setdefault(key, {})[stat] = flat.reshape(len(table), *shapes[name])
    return out


def read_shard(path: Path) -> tuple[pa.Table | None, pa.Table, pa.Table]:
    """(frames table or None, episodes table, attempts table) of a staged shard."""
    frames = _read(path / "frames.arrow") if (path / "frames.arrow").exists() else None
    return frames, _read(path / "episodes.arrow"), _read(path / "attempts.arrow")


def _write(table: pa.Table, path: Path) -> None:
    from synth.dataset.durable import naming

    with naming(path), pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def clean_partial(root: Path, cameras: tuple[str, ...] | list[str] = ()) -> None:
    """Delete temporary shard directories left by killed workers, and staged shards that cannot be read
    whole (a file emptied or cut short by a power loss, a shard half deleted, an older layout, a camera's
    video missing): they are run again."""
    staging = root / ".synth" / "staging"
    if staging.exists():
        for p in staging.glob("shard-*"):
            if ".tmp-" in p.name or not readable(p, cameras):
                shutil.rmtree(p, ignore_errors=True)


def readable(path: Path, cameras: tuple[str, ...] | list[str] = ()) -> bool:
    """A staged shard's tables open (their footers are intact) and hold what they should."""
    try:
        eps = _read(path / "episodes.arrow")
        _read(path / "attempts.arrow")
        if eps.num_rows:
            frames = _read(path / "frames.arrow")
            if frames.num_rows != int(pc.sum(eps["length"]).as_py()):
                return False
            for cam in cameras:
                if not _video_readable(path / f"{cam}.mp4"):
                    return False
    except (OSError, pa.ArrowException):
        return False
    return True


def _video_readable(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as c:
            return bool(c.streams.video) and c.streams.video[0].frames != 0
    except (OSError, av.error.FFmpegError):
        return False


def discard(path: Path, commit: int = -1) -> None:
    """Delete a committed staged shard: renamed first (a kill then leaves a temporary directory, never a
    half-deleted shard under its own name), then its files one by one."""
    if not path.exists():
        return
    gone = path.with_name(path.name + f".tmp-gone-{os.getpid()}")
    os.replace(path, gone)
    fsync(gone.parent)
    for i, f in enumerate(sorted(gone.iterdir())):
        f.unlink()
        if i == 0:
            fault("cleanup", commit)
    gone.rmdir()
