"""LeRobot v3.0 on disk: constants and pure functions for its metadata (info.json, tasks.parquet) and its
data and episodes tables; the statistics are synth.dataset.stats.

Mirrors lerobot 0.4.4 (`lerobot/datasets/{utils,lerobot_dataset}.py`) without importing it.
Shapes: T frames of one episode, D dimensions of a vector feature.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synth.dataset.stats import tolist

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
            values = [tolist(v) for v in values]
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


def label_features(
    task, action: str = "joint_pos", joint_names: list[str] | None = None, ee_names: list[str] | None = None
) -> dict:
    """Per-frame labels synth writes beside state and action: (dtype, shape, names). The executed joint
    targets are a label of their own when the action column holds another convention. `ee_names`: the
    embodiment's (7 per arm; default one arm's)."""
    pose = ["x", "y", "z", "qw", "qx", "qy", "qz"]
    ee = list(ee_names or pose)
    out = {
        "observation.ee_pose": ("float32", (len(ee),), ee),
        "synth.object_pose": ("float32", (7,), pose),
        "synth.phase": ("int64", (1,), list(task.phases)),
    }
    if action != "joint_pos":
        names = list(joint_names or [])
        out["synth.joint_target"] = ("float32", (len(names),), names)
    return out
