"""An independent reader and validator of LeRobot v3.0 directories.

It shares only the path templates and stat names with synth's writer (format constants), so it can catch
the writer's mistakes. Data and videos are checked one file at a time, so datasets of any size fit in memory.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth.dataset.format import CODEBASE_VERSION, INFO_PATH, STATS_PATH, TASKS_PATH
from synth.dataset.stats import STAT_KEYS

TIME_TOL = 1e-4  # [s] lerobot's default tolerance_s
MAX_PROBLEMS = 50  # per kind of check, so a broken million-episode dataset gives a readable report


def _numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as (N,) or (N, D)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_list(arr.type):
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), arr.type.list_size)
    return arr.to_numpy(zero_copy_only=False)


class LeRobotDir:
    """A LeRobot v3.0 dataset directory: metadata, per-episode frames and decoded videos, and validation."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------------------------------ metadata
    @cached_property
    def info(self) -> dict:
        return json.loads((self.root / INFO_PATH).read_text())

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def features(self) -> dict:
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, ft in self.features.items() if ft["dtype"] == "video"]

    @cached_property
    def tasks(self) -> dict[str, int]:
        """{task text: task_index}."""
        df = pd.read_parquet(self.root / TASKS_PATH)
        return {str(t): int(i) for t, i in zip(df.index, df["task_index"], strict=True)}

    @cached_property
    def episodes(self) -> pd.DataFrame:
        """Rows of every meta/episodes file, in file order."""
        paths = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not paths:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)

    @cached_property
    def stats(self) -> dict:
        return json.loads((self.root / STATS_PATH).read_text())

    def data_files(self) -> list[Path]:
        return sorted((self.root / "data").glob("chunk-*/file-*.parquet"))

    def _data_path(self, row) -> Path:
        rel = self.info["data_path"].format(
            chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
        )
        return self.root / rel

    def _video_path(self, row, key: str) -> Path:
        rel = self.info["video_path"].format(
            video_key=key,
            chunk_index=int(row[f"videos/{key}/chunk_index"]),
            file_index=int(row[f"videos/{key}/file_index"]),
        )
        return self.root / rel

    # ------------------------------------------------------------------------------------------ frames
    def _row(self, i: int):
        hit = self.episodes[self.episodes["episode_index"] == i]
        if len(hit) != 1:
            raise KeyError(f"episode {i}: {len(hit)} rows in meta/episodes")
        return hit.iloc[0]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode i: every per-frame column (T,) or (T, D), and per camera key frames (T, H, W, 3) uint8."""
        row = self._row(i)
        table = pq.read_table(self._data_path(row), filters=[("episode_index", "=", i)])
        table = table.sort_by("frame_index")
        out = {name: _numpy(table[name]) for name in table.column_names}
        for key in self.video_keys:
            out[key] = decode(
                self._video_path(row, key),
                row[f"videos/{key}/from_timestamp"],
                row[f"videos/{key}/to_timestamp"],
                self.fps,
            )
        return out

    # ------------------------------------------------------------------------------------------ validation
    def validate(self) -> list[str]:
        """Human-readable problems; an empty list means the dataset is valid."""
        try:
            info = self.info
        except (OSError, json.JSONDecodeError) as e:
            return [f"meta/info.json unreadable: {e}"]
        problems: list[str] = []
        for key in (
            "codebase_version",
            "fps",
            "features",
            "total_episodes",
            "total_frames",
            "total_tasks",
            "data_path",
        ):
            if key not in info:
                problems.append(f"info.json: missing {key!r}")
        if problems:
            return problems
        if info["codebase_version"] != CODEBASE_VERSION:
            problems.append(f"info.json: codebase_version {info['codebase_version']!r} != {CODEBASE_VERSION!r}")
        if self.video_keys and not info.get("video_path"):
            problems.append("info.json: video features but no video_path")
        for check in (self._check_tasks, self._check_episodes, self._check_data, self._check_videos, self._check_stats):
            try:
                problems += check()
            except Exception as e:  # noqa: BLE001 - a broken file is a problem to report, not a crash
                problems.append(f"{check.__name__[7:]}: {type(e).__name__}: {e}")
        return problems

    def _check_tasks(self) -> list[str]:
        p = []
        idx = sorted(self.tasks.values())
        if idx != list(range(len(idx))):
            p.append(f"tasks: task_index values are not 0..{len(idx) - 1}: {idx[:10]}")
        df = pd.read_parquet(self.root / TASKS_PATH)
        if list(df["task_index"]) != idx:
            p.append("tasks: rows not sorted by task_index (lerobot reads tasks.iloc[task_index])")
        if self.info["total_tasks"] != len(idx):
            p.append(f"info.json: total_tasks {self.info['total_tasks']} != {len(idx)} tasks")
        return p

    def _check_episodes(self) -> list[str]:
        p: list[str] = []
        ep, info = self.episodes, self.info
        n = len(ep)
        if n == 0:
            return ["meta/episodes: no episodes"]
        if info["total_episodes"] != n:
            p.append(f"info.json: total_episodes {info['total_episodes']} != {n} episode rows")
        if info.get("splits", {}).get("train") != f"0:{n}":
            p.append(f"info.json: splits {info.get('splits')} != {{'train': '0:{n}'}}")
        idx = ep["episode_index"].to_numpy()
        if not np.array_equal(idx, np.arange(n)):
            p.append(f"episodes: episode_index is not 0..{n - 1} in file order (first: {idx[:10].tolist()})")
        length = ep["length"].to_numpy()
        start, stop = ep["dataset_from_index"].to_numpy(), ep["dataset_to_index"].to_numpy()
        if info["total_frames"] != int(length.sum()):
            p.append(f"info.json: total_frames {info['total_frames']} != {int(length.sum())} (sum of lengths)")
        bad = np.flatnonzero(stop - start != length)
        p += [f"episode {idx[i]}: to-from index {stop[i] - start[i]} != length {length[i]}" for i in bad[:MAX_PROBLEMS]]
        expect_start = np.concatenate([[0], np.cumsum(length)[:-1]])
        bad = np.flatnonzero(start != expect_start)
        p += [f"episode {idx[i]}: dataset_from_index {start[i]} != {expect_start[i]}" for i in bad[:MAX_PROBLEMS]]
        bad = np.flatnonzero(length < 1)
        p += [f"episode {idx[i]}: length {length[i]}" for i in bad[:MAX_PROBLEMS]]
        known = set(self.tasks)
        for i, tasks in zip(idx, ep["tasks"], strict=True):
            missing = [t for t in tasks if t not in known]
            if missing:
                p.append(f"episode {i}: tasks {missing} not in meta/tasks.parquet")
                if len(p) > MAX_PROBLEMS:
                    break
        need = ["data/chunk_index", "data/file_index", "meta/episodes/chunk_index", "meta/episodes/file_index"]
        need += [
            f"videos/{k}/{c}"
            for k in self.video_keys
            for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        ]
        p += [f"episodes: missing column {c!r}" for c in need if c not in ep.columns]
        return p

    def _expected_type(self, ft: dict) -> pa.DataType:
        dtype = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
        shape = list(ft["shape"])
        return dtype if shape == [1] else pa.list_(dtype, shape[0])

    def _schema_problems(self, name: Path, schema: pa.Schema, columns: dict[str, dict]) -> list[str]:
        """A data file's columns against info.json's features `columns` (those not stored as video or image)."""
        p: list[str] = []
        for key, ft in columns.items():
            if key not in schema.names:
                p.append(f"{name}: feature {key!r} missing")
                continue
            got, want = schema.field(key).type, self._expected_type(ft)
            same = got == want or (
                pa.types.is_fixed_size_list(got)
                and pa.types.is_fixed_size_list(want)
                and got.list_size == want.list_size
                and got.value_type == want.value_type
            )
            if not same:
                p.append(f"{name}: {key!r} is {got}, info.json says {ft['dtype']} {list(ft['shape'])} ({want})")
        extra = set(schema.names) - set(columns)
        if extra:
            p.append(f"{name}: columns not in info.json features: {sorted(extra)}")
        return p

    def _check_data(self) -> list[str]:
        p: list[str] = []
        ep, fps = self.episodes, self.fps
        starts, stops = ep["dataset_from_index"].to_numpy(), ep["dataset_to_index"].to_numpy()
        ep_idx = ep["episode_index"].to_numpy()
        by_file = {(int(c), int(f)) for c, f in zip(ep["data/chunk_index"], ep["data/file_index"], strict=True)}
        columns = {k: ft for k, ft in self.features.items() if ft["dtype"] not in ("video", "image")}
        tasks = np.array(sorted(self.tasks.values()), np.int64)
        files = self.data_files()
        if not files:
            return ["data: no parquet files"]
        expected_files = {self.root / self.info["data_path"].format(chunk_index=c, file_index=f) for c, f in by_file}
        p += [
            f"data: {f.relative_to(self.root)} referenced by episodes but missing" for f in expected_files - set(files)
        ]
        next_index = 0
        for path in files:
            name = path.relative_to(self.root)
            schema = pq.read_schema(path)
            p += self._schema_problems(name, schema, columns)
            present = [
                c for c in ("index", "episode_index", "frame_index", "timestamp", "task_index") if c in schema.names
            ]
            t = pq.read_table(path, columns=present)
            if "index" not in present:
                continue
            index = _numpy(t["index"])
            want = np.arange(next_index, next_index + len(index))
            if not np.array_equal(index, want):
                k = int(np.flatnonzero(index != want)[0])
                p.append(f"{name}: index not global and contiguous: row {k} has {index[k]}, expected {want[k]}")
                next_index += len(index)
                continue
            next_index += len(index)
            which = np.searchsorted(stops, index, side="right")  # episode row of each frame
            inside = which < len(stops)
            if not inside.all():
                p.append(f"{name}: index {index[~inside][0]} beyond the last episode's dataset_to_index")
                continue
            p += _row_problems(name, t, index, ep_idx[which], index - starts[which], fps, tasks)
            rel = path.relative_to(self.root / "data").parts
            here = (int(rel[0].split("-")[1]), int(rel[1].split("-")[1].split(".")[0]))
            rows = np.unique(which)
            chunk, file = ep["data/chunk_index"].to_numpy()[rows], ep["data/file_index"].to_numpy()[rows]
            wrong = ep_idx[rows[(chunk != here[0]) | (file != here[1])]]
            if len(wrong):
                p.append(
                    f"{name}: holds episodes {wrong[:5].tolist()} whose data/chunk_index, file_index point elsewhere"
                )
        if next_index != self.info["total_frames"]:
            p.append(f"data: {next_index} rows in all files != total_frames {self.info['total_frames']}")
        return p

    def _check_videos(self) -> list[str]:
        p: list[str] = []
        ep, fps = self.episodes, self.fps
        ep_idx, length = ep["episode_index"].to_numpy(), ep["length"].to_numpy()
        for key in self.video_keys:
            if f"videos/{key}/from_timestamp" not in ep.columns:
                continue  # reported by _check_episodes
            height, width = list(self.features[key]["shape"])[:2]
            t0 = ep[f"videos/{key}/from_timestamp"].to_numpy(np.float64)
            t1 = ep[f"videos/{key}/to_timestamp"].to_numpy(np.float64)
            span = (t1 - t0) * fps
            bad = np.flatnonzero(np.abs(span - length) > TIME_TOL * fps)
            p += [
                f"{key}: episode {ep_idx[i]} spans {span[i]:.3f} frames of video, length is {length[i]}"
                for i in bad[:MAX_PROBLEMS]
            ]
            first = np.round(t0 * fps).astype(np.int64)
            bad = np.flatnonzero((t0 < 0) | (np.abs(t0 * fps - first) > TIME_TOL * fps))
            p += [f"{key}: episode {ep_idx[i]} from_timestamp {t0[i]} is not a frame time" for i in bad[:MAX_PROBLEMS]]
            files = ep.groupby([f"videos/{key}/chunk_index", f"videos/{key}/file_index"]).indices
            for (chunk, file), rows in files.items():
                path = self.root / self.info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
                name = path.relative_to(self.root)
                if not path.exists():
                    p.append(f"{key}: {name} missing (episodes {ep_idx[rows[:5]].tolist()} ...)")
                    continue
                present, size = probe(path, fps)
                if size != (height, width):
                    p.append(f"{key}: {name} is {size} px, features say {height, width}")
                frames = np.array(sorted(present), np.int64)
                lo, hi = first[rows], first[rows] + length[rows]
                found = np.searchsorted(frames, hi) - np.searchsorted(frames, lo)
                for i in rows[found != length[rows]][:MAX_PROBLEMS]:
                    p.append(
                        f"{key}: episode {ep_idx[i]} needs frames {first[i]}..{first[i] + length[i] - 1} of {name}, "
                        f"{length[i] - (found[rows == i][0])} absent (file has {len(frames)})"
                    )
        return p

    def _check_stats(self) -> list[str]:
        p: list[str] = []
        if not (self.root / STATS_PATH).exists():
            return ["meta/stats.json missing"]
        stats = self.stats
        for key, ft in self.features.items():
            if ft["dtype"] == "string":
                continue
            if key not in stats:
                p.append(f"stats.json: feature {key!r} missing")
                continue
            shape = list(ft["shape"])
            want = (3, 1, 1) if ft["dtype"] in ("video", "image") else (shape[0],)
            for k in STAT_KEYS:
                if k not in stats[key]:
                    p.append(f"stats.json: {key!r} lacks {k!r}")
                    continue
                got = np.asarray(stats[key][k]).shape
                if got != ((1,) if k == "count" else want):
                    p.append(f"stats.json: {key}/{k} has shape {got}, expected {(1,) if k == 'count' else want}")
        cols = set(self.episodes.columns)
        missing = sorted(
            f"stats/{key}/{k}" for key, ft in self.features.items() if ft["dtype"] != "string" for k in STAT_KEYS
        )
        missing = [c for c in missing if c not in cols]
        if missing:
            p.append(f"episodes: missing stats columns {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        return p


def probe(path: Path, fps: float) -> tuple[set[int], tuple[int, int]]:
    """(frame numbers k = time * fps present, (height, width)) of an mp4, from its packets' pts, without decoding."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base or 0)
        frames = {round(pkt.pts * tb * fps) for pkt in container.demux(stream) if pkt.pts is not None}
        return frames, (stream.codec_context.height, stream.codec_context.width)


def decode(path: Path, t0: float, t1: float, fps: float) -> np.ndarray:
    """Frames with time in [t0, t1) [s]: (N, H, W, 3) uint8, decoded from the keyframe at or before t0."""
    first, stop = round(t0 * fps), round(t1 * fps)
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base or 0)
        container.seek(int(np.floor(t0 / tb)), stream=stream, backward=True)
        for frame in container.decode(stream):
            k = round((frame.time or 0.0) * fps)
            if k >= stop:
                break
            if k >= first:
                out.append(frame.to_ndarray(format="rgb24"))
        h, w = stream.codec_context.height, stream.codec_context.width
    return np.stack(out) if out else np.zeros((0, h, w, 3), np.uint8)


def _row_problems(
    name: Path, t: pa.Table, index: np.ndarray, episode: np.ndarray, frame: np.ndarray, fps: float, tasks: np.ndarray
) -> list[str]:
    """A data file's episode_index, frame_index, timestamp and task_index (those of them in `t`) against the frames'
    global `index` (N,): each frame's `episode` (N,) and `frame` (N,) within it, from the episodes table, at
    `fps` [Hz]; task indices from `tasks`. At most five problems per column."""
    p: list[str] = []
    if "episode_index" in t.column_names:
        got = _numpy(t["episode_index"])
        bad = np.flatnonzero(got != episode)
        p += [f"{name}: index {index[i]} has episode_index {got[i]}, expected {episode[i]}" for i in bad[:5]]
    if "frame_index" in t.column_names:
        got = _numpy(t["frame_index"])
        bad = np.flatnonzero(got != frame)
        p += [f"{name}: index {index[i]} has frame_index {got[i]}, expected {frame[i]}" for i in bad[:5]]
    if "timestamp" in t.column_names:
        ts = _numpy(t["timestamp"]).astype(np.float64)
        bad = np.flatnonzero(np.abs(ts - frame / fps) > TIME_TOL)
        p += [f"{name}: index {index[i]} has timestamp {ts[i]:.6f}, expected {frame[i] / fps:.6f}" for i in bad[:5]]
    if "task_index" in t.column_names:
        got = _numpy(t["task_index"])
        bad = np.flatnonzero(~np.isin(got, tasks))
        p += [f"{name}: index {index[i]} has task_index {got[i]}, not in tasks" for i in bad[:5]]
    return p
