"""LeRobot v3.0 on disk: constants and pure functions for its metadata, tables and statistics.

Mirrors lerobot 0.4.4 (`lerobot/datasets/{utils,compute_stats,lerobot_dataset}.py`) without importing it.
Shapes: T frames of one episode, D dimensions of a vector feature; images are (T, H, W, 3) uint8 RGB.
Statistics are dicts ``{feature: {stat: ndarray}}`` with stats ``min max mean std count q01 q10 q50 q90 q99``;
``count`` has shape (1,), vector stats (D,), scalar-feature stats (1,), image stats (3, 1, 1) in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)
HIST_BINS = 5000  # lerobot's RunningQuantileStats histogram resolution
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VIDEO_CODEC_NAMES = {"h264": "h264", "av1": "av1"}  # synth codec -> PyAV canonical name (lerobot's video.codec)


def _fps_value(fps: float) -> int | float:
    return int(fps) if float(fps).is_integer() else float(fps)


# ---------------------------------------------------------------------------------------------- info.json
def features(
    state_names: list[str],
    action_names: list[str],
    labels: dict[str, tuple[str, tuple[int, ...], list[str] | None]],
    cameras: dict[str, tuple[int, int]],
    fps: float,
    codec: str,
) -> dict:
    """LeRobot `features`: state and action float32 [D], labels (dtype, shape, names), cameras (H, W) [px], defaults.

    Shapes of labels are (1,) (a scalar column) or (D,) (a fixed-size list column).
    """
    out: dict[str, dict] = {
        "observation.state": {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
        "action": {"dtype": "float32", "shape": [len(action_names)], "names": list(action_names)},
    }
    for key, (dtype, shape, names) in labels.items():
        if len(shape) != 1:
            raise ValueError(f"label {key!r} has shape {shape}: synth writes only (1,) or (D,) labels")
        np.dtype(dtype)  # raises on an unknown dtype
        out[key] = {"dtype": dtype, "shape": [int(s) for s in shape], "names": None if names is None else list(names)}
    for cam, (height, width) in cameras.items():
        out[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": [int(height), int(width), 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": int(height),
                "video.width": int(width),
                "video.codec": VIDEO_CODEC_NAMES[codec],
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": _fps_value(fps),
                "video.channels": 3,
                "has_audio": False,
            },
        }
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = {**ft, "shape": list(ft["shape"])}
    bad = [k for k in out if "/" in k]
    if bad:
        raise ValueError(f"feature names must not contain '/' (lerobot splits stats columns on it): {bad}")
    return out


def info(
    features: dict,
    fps: float,
    robot_type: str | None,
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    has_video: bool | None = None,
) -> dict:
    """meta/info.json; `has_video` defaults to whether any feature has dtype "video"."""
    if has_video is None:
        has_video = any(ft["dtype"] == "video" for ft in features.values())
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": int(total_episodes),
        "total_frames": int(total_frames),
        "total_tasks": int(total_tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": _fps_value(fps),
        "splits": {"train": f"0:{int(total_episodes)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": features,
    }


# ---------------------------------------------------------------------------------------------- statistics
def _quantiles(x: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: float) -> dict[str, np.ndarray]:
    """lerobot's histogram quantiles: x (N, D) values with weights w (N, D), HIST_BINS bins on [lo, hi] per dim."""
    d = x.shape[1]
    width = (hi - lo) / HIST_BINS
    scale = np.divide(HIST_BINS, hi - lo, out=np.zeros_like(width), where=hi > lo)
    idx = np.clip(((x - lo) * scale).astype(np.int64), 0, HIST_BINS - 1)
    hist = np.bincount((idx + np.arange(d) * HIST_BINS).ravel(), w.ravel(), minlength=d * HIST_BINS)
    cum = hist.reshape(d, HIST_BINS).cumsum(axis=1)
    rows = np.arange(d)
    out = {}
    for key, q in QUANTILES.items():
        target = q * n
        i = (cum < target).sum(axis=1)  # np.searchsorted(cum[d], target) per dimension
        j = np.clip(i, 1, HIST_BINS - 1)
        before = cum[rows, j - 1]
        in_bin = cum[rows, j] - before
        edge = lo + j * width
        frac = np.divide(target - before, in_bin, out=np.zeros_like(before), where=in_bin > 0)
        val = edge + frac * width
        out[key] = np.where(i == 0, lo, np.where(i >= HIST_BINS, hi, val))
    return out


def _weighted_stats(x: np.ndarray, w: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Stats per column of x (N, D) float64 with weights w (N, D) (zero weight: value absent)."""
    n = w.sum(axis=0)
    present = w > 0
    mn = np.where(present, x, np.inf).min(axis=0)
    mx = np.where(present, x, -np.inf).max(axis=0)
    mean = (w * x).sum(axis=0) / n
    std = np.sqrt(np.maximum((w * (x - mean) ** 2).sum(axis=0) / n, 0.0))
    out = {"min": mn, "max": mx, "mean": mean, "std": std, "count": np.array([count], np.int64)}
    if n[0] < 2:  # lerobot: too few samples for quantiles, use the mean
        out.update({k: mean.copy() for k in QUANTILES})
    else:
        out.update(_quantiles(x, w, mn - 1e-10, mx + 1e-10, float(n[0])))
    return out


def episodes_array_stats(values: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """array_stats of every episode at once: values (N, ...) are E episodes' frames concatenated, lengths (E,).

    Returns {stat: (E, D)} (count (E, 1)), equal to array_stats per episode (to float rounding): the same
    min/max/mean/std and the same histogram quantiles, found from each episode's sorted bin indices
    instead of a HIST_BINS-long cumulative histogram per episode.

    The numbers are those of one (E, max length, D) array padded with zeros, to the bit: a vector feature
    (D > 1) is summed frame after frame, so it is done in groups of similar length with less padding (a sum
    that padding turned from -0.0 to 0.0 is turned likewise); a scalar one is summed pairwise, so in one.
    """
    x = np.asarray(values).reshape(len(values), -1).astype(np.float64)
    lengths = np.asarray(lengths, np.int64)
    E, L = len(lengths), int(lengths.max())
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    if x.shape[1] == 1 or E < 64:
        return _padded_stats(x, starts, lengths, lengths < L)
    order = np.argsort(lengths, kind="stable")
    out: dict[str, np.ndarray] = {}
    for part in np.array_split(order, 4):
        st = _padded_stats(x, starts[part], lengths[part], lengths[part] < L)
        for k, v in st.items():
            out.setdefault(k, np.empty((E, v.shape[1]), v.dtype))[part] = v
    return out


def _padded_stats(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, padded: np.ndarray) -> dict[str, np.ndarray]:
    """episodes_array_stats of the episodes at `starts` (E,) with `lengths` (E,) in x (N, D), summed over an
    (E, max length, D) array; padded (E,): whether the episode was padded in the caller's array."""
    E, L, D = len(lengths), int(lengths.max()), x.shape[1]
    t = np.arange(L)
    valid = (t[None, :] < lengths[:, None])[..., None]  # (E, L, 1)
    X = x[starts[:, None] + np.minimum(t[None, :], lengths[:, None] - 1)]  # (E, L, D), padded with its last frame
    n = lengths[:, None].astype(np.float64)
    zero = np.where(padded, 0.0, -0.0)[:, None]  # + 0.0 is what a zero of padding adds to a sum
    mn, mx = X.min(1), X.max(1)
    mean = (np.where(valid, X, 0.0).sum(1) + zero) / n
    std = np.sqrt(np.maximum((np.where(valid, (X - mean[:, None]) ** 2, 0.0).sum(1) + zero) / n, 0.0))
    out = {"min": mn, "max": mx, "mean": mean, "std": std, "count": lengths[:, None].copy()}
    lo, hi = mn - 1e-10, mx + 1e-10
    width = (hi - lo) / HIST_BINS
    scale = np.divide(HIST_BINS, hi - lo, out=np.zeros_like(width), where=hi > lo)
    idx = np.clip(((X - lo[:, None]) * scale[:, None]).astype(np.int64), 0, HIST_BINS - 1).astype(np.int16)
    s = np.sort(np.where(valid, idx, np.int16(2 * HIST_BINS)), axis=1)  # padding sorts last, counted nowhere
    # (int16: bin numbers fit, and numpy sorts 2-byte integers 3x faster than 8-byte ones)
    # counts of bins below / up to j per (episode, dim): binary searches in the rows laid end to end
    span = 2 * HIST_BINS + 1
    row = np.arange(E * D, dtype=np.int64).reshape(E, D)
    keys = (s.transpose(0, 2, 1) + (row * span)[..., None]).reshape(-1)  # int64
    for key, q in QUANTILES.items():
        target = q * n  # (E, 1)
        rank = np.clip(np.ceil(target).astype(np.int64), 1, L)  # the first bin whose cumulative count >= target
        i = np.take_along_axis(s, np.broadcast_to(rank - 1, (E, D))[:, None], axis=1)[:, 0]
        j = np.clip(i, 1, HIST_BINS - 1)
        below = np.searchsorted(keys, row * span + j, side="left") - row * L
        before = below.astype(np.float64)
        in_bin = (np.searchsorted(keys, row * span + j, side="right") - row * L) - before
        frac = np.divide(target - before, in_bin, out=np.zeros_like(before), where=in_bin > 0)
        val = lo + j * width + frac * width
        out[key] = np.where(n < 2, mean, np.where(i == 0, lo, np.where(i >= HIST_BINS, hi, val)))
    return out


def sample_indices(length: int) -> np.ndarray:
    """Frames lerobot samples for image stats: 100 (or all if fewer) up to 10,000 as length**0.75."""
    num = max(min(100, length), min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, num)).astype(np.int64)


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of frames (T, H, W, 3) uint8, on lerobot's frame subsample, scaled to [0, 1]: (3, 1, 1).

    Unlike lerobot 0.4.4 (whose uint8 `batch**2` overflows, giving std 0) std is computed exactly.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames {frames.shape} {frames.dtype}: expected (T, H, W, 3) uint8")
    idx = sample_indices(len(frames))
    sub = frames[idx]
    height, width = frames.shape[1:3]
    if max(height, width) >= 300:  # lerobot's auto_downsample_height_width
        step = int(width / 150) if width > height else int(height / 150)
        sub = sub[:, ::step, ::step]
    counts = np.stack([np.bincount(sub[..., c].ravel(), minlength=256) for c in range(3)], axis=1)
    values = np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
    s = _weighted_stats(values, counts.astype(np.float64), len(idx))
    return {k: v if k == "count" else (v / 255.0).reshape(3, 1, 1) for k, v in s.items()}


def array_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of one per-frame feature (T,) or (T, D) over time: shape (1,) or (D,)."""
    a = np.asarray(values)
    x = a.reshape(len(a), -1).astype(np.float64)
    return _weighted_stats(x, np.ones_like(x), len(a))


def episode_stats(arrays: dict[str, np.ndarray], images: dict[str, np.ndarray] | None = None) -> dict:
    """Per-episode stats as lerobot's compute_episode_stats: arrays (T, ...) per feature, images (T, H, W, 3) uint8.

    Non-numeric arrays (strings) are skipped, as lerobot does.
    """
    out = {key: array_stats(a) for key, a in arrays.items() if np.asarray(a).dtype.kind in "biuf"}
    out.update({key: image_stats(f) for key, f in (images or {}).items()})
    return out


class StatsAccumulator:
    """Dataset stats from per-episode stats, as lerobot's aggregate_stats, in O(features) memory.

    mean: count-weighted; std: pooled (Chan's parallel variance); min/max: global; quantiles: count-weighted
    means of the per-episode quantiles; count: total. Episodes are folded in one after another (the numbers do
    not depend on how they are batched); every feature's numbers sit side by side in one flat vector per
    stat, so one episode costs a dozen vector operations whatever the number of features.
    """

    def __init__(self) -> None:
        self._layout: list[tuple[str, tuple[int, ...]]] = []  # (feature, shape of its stats) in order
        self._acc: dict[str, np.ndarray] = {}  # stat -> flat vector over every feature's entries
        self._has: dict[str, np.ndarray] = {}  # quantile -> (features,) whether every episode had it
        self.episodes = 0

    def add(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        """Fold in one episode's stats."""
        self.add_batch({k: {st: np.asarray(v)[None] for st, v in s.items()} for k, s in stats.items()})

    def add_batch(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        """Fold in E episodes' stats, {feature: {stat: (E, *shape)}}, in order; every episode has the same features."""
        layout = [(k, np.shape(s["mean"])[1:]) for k, s in stats.items()]
        if not layout:
            return
        E = len(stats[layout[0][0]]["mean"])
        if not self._layout:
            self._layout = layout
        elif layout != self._layout:
            raise ValueError(f"episode stats have features {layout}, the dataset's are {self._layout}")

        def flat(stat: str) -> np.ndarray:
            return np.concatenate([np.asarray(stats[k][stat], np.float64).reshape(E, -1) for k, _ in layout], axis=1)

        width = [int(np.prod(shape)) for _, shape in layout]
        count = np.concatenate(
            [
                np.repeat(np.asarray(stats[k]["count"]).reshape(E, -1)[:, :1].astype(np.float64), w, 1)
                for (k, _), w in zip(layout, width, strict=True)
            ],
            axis=1,
        )
        mean, mn, mx = flat("mean"), flat("min"), flat("max")
        var = flat("std") ** 2
        has = {q: np.array([q in stats[k] for k, _ in layout]) for q in QUANTILES}
        qs = {}
        for q in QUANTILES:
            if has[q].any():
                vals = [
                    np.asarray(stats[k][q], np.float64).reshape(E, -1) if q in stats[k] else np.zeros((E, w))
                    for (k, _), w in zip(layout, width, strict=True)
                ]
                qs[q] = np.concatenate(vals, axis=1) * count
        start = 0
        if not self._acc:
            c = count[0]
            self._acc = {"n": c, "min": mn[0], "max": mx[0], "mean": mean[0], "m2": var[0] * c}
            self._acc.update({q: v[0] for q, v in qs.items()})
            self._has = has
            start = 1
        a = self._acc
        for e in range(start, E):
            c, n = count[e], a["n"]
            total = n + c
            delta = mean[e] - a["mean"]
            a["mean"] = a["mean"] + delta * (c / total)
            a["m2"] = a["m2"] + var[e] * c + delta**2 * (n * c / total)
            a["min"] = np.minimum(a["min"], mn[e])
            a["max"] = np.maximum(a["max"], mx[e])
            for q, v in qs.items():
                if q in a:
                    a[q] = a[q] + v[e]
            a["n"] = total
        self._has = {q: self._has.get(q, np.zeros(len(layout), bool)) & has[q] for q in QUANTILES}
        self.episodes += E

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        """The aggregated stats so far."""
        out = {}
        start = 0
        a = self._acc
        for i, (key, shape) in enumerate(self._layout):
            sl = slice(start, start + int(np.prod(shape)))
            start = sl.stop
            n = a["n"][sl]
            out[key] = {
                "min": a["min"][sl].reshape(shape),
                "max": a["max"][sl].reshape(shape),
                "mean": a["mean"][sl].reshape(shape),
                "std": np.sqrt(np.maximum(a["m2"][sl] / n, 0.0)).reshape(shape),
                "count": np.array([round(float(n[0]))], np.int64),
                **{q: (a[q][sl] / n).reshape(shape) for q in QUANTILES if q in a and self._has[q][i]},
            }
        return out


def _tolist(v) -> list:
    a = np.asarray(v)
    return a.astype(np.int64).tolist() if a.dtype.kind in "iub" else a.astype(np.float64).tolist()


def stats_to_json(stats: dict) -> dict:
    """meta/stats.json: {feature: {stat: nested lists}}, count as integers."""
    return {key: {k: _tolist(v) for k, v in s.items()} for key, s in stats.items()}


def flatten_stats(stats: dict) -> dict[str, list]:
    """Episode-row columns `stats/<feature>/<stat>` -> nested lists."""
    return {f"stats/{key}/{k}": _tolist(v) for key, s in stats.items() for k, v in s.items()}


def stats_from_row(row: dict) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of flatten_stats on one episodes-table row (e.g. from `Table.to_pylist()`)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for col, value in row.items():
        if col.startswith("stats/") and value is not None:
            key, stat = col[len("stats/") :].rsplit("/", 1)
            out.setdefault(key, {})[stat] = np.asarray(value)
    return out


# ---------------------------------------------------------------------------------------------- tables
def arrow_type(feature: dict) -> pa.DataType:
    """Parquet column type lerobot (HF datasets) expects: shape [1] -> scalar, [D] -> fixed_size_list<item>[D]."""
    value = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    shape = list(feature["shape"])
    if shape == [1]:
        return value
    if len(shape) == 1:
        return pa.list_(pa.field("item", value), shape[0])
    raise ValueError(f"feature shape {shape}: only [1] and [D] are written to parquet by synth")


def data_schema(features: dict) -> pa.Schema:
    """Schema of data/ parquet files: every non-video feature, in `features` order."""
    return pa.schema([(k, arrow_type(ft)) for k, ft in features.items() if ft["dtype"] not in ("video", "image")])


def _column(values) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if pa.types.is_fixed_size_list(values.type) and values.type.list_size == 1:
            return values.flatten()
        return values
    a = np.asarray(values)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 1:
        return pa.array(a)
    if a.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).reshape(-1)), a.shape[1])
    raise ValueError(f"array of shape {a.shape}: expected (T,) or (T, D)")


def data_table(columns: dict[str, np.ndarray | pa.Array | pa.ChunkedArray], features: dict | None = None) -> pa.Table:
    """Frames table for data/...parquet: (T,) or (T, 1) -> scalar column, (T, D) -> fixed_size_list<item>[D].

    With `features`, columns are cast to the declared types and must be exactly its non-video features.
    """
    table = pa.table({k: _column(v) for k, v in columns.items()})
    if features is None:
        return table
    schema = data_schema(features)
    if set(table.column_names) != set(schema.names):
        raise ValueError(f"columns {sorted(table.column_names)} != features {sorted(schema.names)}")
    return table.select(schema.names).cast(schema)


_INT_COLUMNS = (
    "episode_index",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
)


def _episodes_column_type(col: str, values: list) -> pa.DataType | None:
    if col in _INT_COLUMNS or (col.startswith("videos/") and col.endswith(("/chunk_index", "/file_index"))):
        return pa.int64()
    if col.startswith("videos/") and col.endswith(("/from_timestamp", "/to_timestamp")):
        return pa.float64()
    if col == "tasks":
        return pa.list_(pa.string())
    if col.startswith("stats/"):
        t: pa.DataType = pa.int64() if col.endswith("/count") else pa.float64()
        for _ in range(np.asarray(values[0]).ndim):
            t = pa.list_(t)
        return t
    return None  # extra column: inferred


def episodes_table(rows: list[dict]) -> pa.Table:
    """meta/episodes/...parquet: one row per episode, every row with the same keys.

    Known LeRobot columns get fixed types (int64 indices, float64 timestamps, list<string> tasks, stats as
    nested lists of float64 / int64 count); extra columns (e.g. "synth/meta" JSON strings) are inferred
    and ignored by lerobot. Values may be numpy arrays.
    """
    if not rows:
        raise ValueError("no episodes")
    cols = list(rows[0])
    for r in rows:
        if set(r) != set(cols):
            raise ValueError(f"episode {r.get('episode_index')} has columns {sorted(set(r) ^ set(cols))} differing")
    arrays = {}
    for col in cols:
        values = [r[col] for r in rows]
        if col.startswith("stats/"):
            values = [_tolist(v) for v in values]
        else:
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
            values = [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
        arrays[col] = pa.array(values, type=_episodes_column_type(col, values))
    return pa.table(arrays)


def write_tasks(path: str | Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet: a pandas DataFrame indexed by `task` (text) with column `task_index`.

    Rows are sorted by task_index, which must be 0..K-1: lerobot looks tasks up with `.iloc[task_index]`.
    """
    items = sorted(tasks.items(), key=lambda kv: kv[1])
    if [i for _, i in items] != list(range(len(items))):
        raise ValueError(f"task indices must be 0..{len(items) - 1}, got {sorted(tasks.values())}")
    df = pd.DataFrame(
        {"task_index": np.arange(len(items), dtype=np.int64)},
        index=pd.Index([t for t, _ in items], name="task"),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp)
    os.replace(tmp, path)
