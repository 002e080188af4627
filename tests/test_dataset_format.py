"""LeRobot v3.0 format: round trip of format + video + reader, and validate() catching corruption.

`build_dataset` is also used by test_lerobot_compat.py (run in a venv with lerobot installed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth.dataset import format as fmt
from synth.dataset.reader import LeRobotDir
from synth.dataset.stats import (
    QUANTILES,
    StatsAccumulator,
    _padded_stats,
    array_stats,
    episode_stats,
    episodes_array_stats,
    flatten_stats,
    image_stats,
    stats_to_json,
)
from synth.dataset.video import VideoWriter, read_frames

TASKS = ["pick the red cube", "place the cube in the bowl"]


def frames(length: int, height: int, width: int, seed: int) -> np.ndarray:
    """Smooth moving test images (compress well, so decoded ~ written): (T, H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(length, dtype=np.float32)[:, None, None]
    r = 128 + 60 * np.sin((x + 3 * t + seed * 7) / width * np.pi)
    g = 128 + 60 * np.cos((y + 2 * t) / height * np.pi)
    b = np.broadcast_to(40.0 + 10 * seed + 0 * t, r.shape)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def build_dataset(
    root: Path,
    lengths: tuple[int, ...] = (6, 9, 5),
    files: tuple[tuple[int, ...], ...] = ((0, 1), (2,)),
    cameras: dict[str, tuple[int, int]] | None = None,
    fps: int = 10,
    codec: str = "h264",
) -> dict:
    """Write a small dataset the way synth's writer does; return what was written.

    Episodes listed together in `files` share one data parquet, one episodes parquet and one mp4 per camera.
    Returns {"features", "episodes": [per-episode arrays + images], "stats", "tasks"}.
    """
    cameras = {"front": (32, 48)} if cameras is None else cameras
    feats = fmt.features(
        state_names=[f"q{i}" for i in range(4)],
        action_names=[f"a{i}" for i in range(3)],
        labels={
            "observation.ee_pose": ("float32", (7,), ["x", "y", "z", "qw", "qx", "qy", "qz"]),
            "synth.phase": ("int64", (1,), ["reach", "grasp", "lift"]),
            "synth.progress": ("float32", (1,), None),
        },
        cameras=cameras,
        fps=fps,
        codec=codec,
    )
    rng = np.random.default_rng(0)
    acc, truth, start = StatsAccumulator(), [], 0
    for file_i, eps in enumerate(files):
        ref = {"chunk_index": file_i // fmt.CHUNKS_SIZE, "file_index": file_i % fmt.CHUNKS_SIZE}
        writers = {
            cam: VideoWriter(
                root / fmt.VIDEO_PATH.format(video_key=f"observation.images.{cam}", **ref), fps, h, w, codec
            )
            for cam, (h, w) in cameras.items()
        }
        columns: dict[str, list[np.ndarray]] = {}
        rows, offset = [], 0
        for e in eps:
            T, task = lengths[e], e % len(TASKS)
            arrays = {
                "observation.state": rng.normal(size=(T, 4)).astype(np.float32),
                "action": rng.normal(size=(T, 3)).astype(np.float32),
                "observation.ee_pose": rng.normal(size=(T, 7)).astype(np.float32),
                "synth.phase": np.minimum(np.arange(T) * 3 // T, 2).astype(np.int64),
                "synth.progress": (np.arange(T) / T).astype(np.float32),
                "timestamp": (np.arange(T) / fps).astype(np.float32),
                "frame_index": np.arange(T, dtype=np.int64),
                "episode_index": np.full(T, e, np.int64),
                "index": np.arange(start, start + T, dtype=np.int64),
                "task_index": np.full(T, task, np.int64),
            }
            images = {
                f"observation.images.{c}": frames(T, h, w, seed=e + j) for j, (c, (h, w)) in enumerate(cameras.items())
            }
            for cam in cameras:
                writers[cam].write(images[f"observation.images.{cam}"])
            stats = episode_stats(arrays, images)
            acc.add(stats)
            row = {
                "episode_index": e,
                "tasks": [TASKS[task]],
                "length": T,
                "data/chunk_index": ref["chunk_index"],
                "data/file_index": ref["file_index"],
                "dataset_from_index": start,
                "dataset_to_index": start + T,
            }
            for cam in cameras:
                key = f"observation.images.{cam}"
                row[f"videos/{key}/chunk_index"] = ref["chunk_index"]
                row[f"videos/{key}/file_index"] = ref["file_index"]
                row[f"videos/{key}/from_timestamp"] = offset / fps
                row[f"videos/{key}/to_timestamp"] = (offset + T) / fps
            row["meta/episodes/chunk_index"] = ref["chunk_index"]
            row["meta/episodes/file_index"] = ref["file_index"]
            row.update(flatten_stats(stats))
            row["synth/meta"] = json.dumps({"seed": e, "success": True})
            rows.append(row)
            for k, v in arrays.items():
                columns.setdefault(k, []).append(v)
            truth.append({**arrays, **images})
            start += T
            offset += T
        for w in writers.values():
            w.close()
        table = fmt.data_table({k: np.concatenate(v) for k, v in columns.items()}, feats)
        (root / fmt.DATA_PATH.format(**ref)).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / fmt.DATA_PATH.format(**ref))
        (root / fmt.EPISODES_PATH.format(**ref)).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(fmt.episodes_table(rows), root / fmt.EPISODES_PATH.format(**ref))
    tasks = {t: i for i, t in enumerate(TASKS)}
    fmt.write_tasks(root / fmt.TASKS_PATH, tasks)
    info = fmt.info(feats, fps, "synth_panda", len(lengths), sum(lengths), len(tasks))
    (root / fmt.INFO_PATH).write_text(json.dumps(info, indent=2))
    stats = acc.result()
    (root / fmt.STATS_PATH).write_text(json.dumps(stats_to_json(stats), indent=2))
    return {"features": feats, "episodes": truth, "stats": stats, "tasks": tasks}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ds")
    return root, build_dataset(root)


def test_round_trip(dataset):
    root, truth = dataset
    d = LeRobotDir(root)
    assert d.validate() == []
    assert d.info["total_episodes"] == 3 and d.info["total_frames"] == 20
    assert d.tasks == truth["tasks"]
    assert list(d.episodes["episode_index"]) == [0, 1, 2]
    for i, want in enumerate(truth["episodes"]):
        got = d.episode(i)
        for key, value in want.items():
            if key.startswith("observation.images."):
                assert got[key].shape == value.shape
                assert np.abs(got[key].astype(int) - value).mean() < 4, key
            else:
                np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_parquet_types(dataset):
    root, _ = dataset
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 4)
    assert schema.field("timestamp").type == pa.float32()
    assert schema.field("synth.phase").type == pa.int64()
    assert schema.field("synth.progress").type == pa.float32()
    ep = pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet")
    assert ep.field("tasks").type == pa.list_(pa.string())
    assert ep.field("stats/observation.images.front/mean").type == pa.list_(pa.list_(pa.list_(pa.float64())))
    assert ep.field("stats/action/count").type == pa.list_(pa.int64())
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.index.name == "task" and list(tasks["task_index"]) == [0, 1]


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_video_shared_file_offsets(tmp_path, codec):
    a, b = frames(7, 32, 32, 0), frames(5, 32, 32, 3)
    with VideoWriter(tmp_path / "v.mp4", 15, 32, 32, codec=codec) as w:
        w.write(a)
        w.write(b)
    assert not list(tmp_path.glob(".*tmp*"))
    got = read_frames(tmp_path / "v.mp4", 7 / 15, 12 / 15, 15)
    assert got.shape == b.shape
    err = np.abs(got[:, None].astype(int) - b[None]).mean(axis=(2, 3, 4))  # (decoded, written)
    assert (err.argmin(axis=1) == np.arange(5)).all() and err.diagonal().max() < 4


def test_video_writer_aborts_without_final_file(tmp_path):
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "v.mp4", 10, 16, 16) as w:
        w.write(frames(3, 16, 16, 0))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_stats_accumulator_matches_pooled():
    rng = np.random.default_rng(1)
    eps = [rng.normal(loc=i, size=(n, 3)) for i, n in enumerate((5, 17, 2, 40))]
    acc = StatsAccumulator()
    for e in eps:
        acc.add(episode_stats({"x": e}))
    got, pooled = acc.result()["x"], np.concatenate(eps)
    np.testing.assert_allclose(got["mean"], pooled.mean(0))
    np.testing.assert_allclose(got["std"], pooled.std(0))
    np.testing.assert_allclose(got["min"], pooled.min(0))
    assert got["count"].tolist() == [64]
    per = [array_stats(e) for e in eps]
    np.testing.assert_allclose(got["q50"], sum(s["q50"] * len(e) for s, e in zip(per, eps, strict=True)) / 64)


def test_quantiles_close_to_exact():
    x = np.random.default_rng(2).uniform(size=(10_000, 2))
    s = array_stats(x)
    for k, q in QUANTILES.items():
        np.testing.assert_allclose(s[k], np.quantile(x, q, axis=0), atol=1e-3)


def test_image_stats_shape_and_scale():
    img = frames(30, 20, 20, 0)
    s = image_stats(img)
    assert all(v.shape == (3, 1, 1) for k, v in s.items() if k != "count")
    np.testing.assert_allclose(s["mean"].ravel(), img.reshape(-1, 3).mean(0) / 255)
    np.testing.assert_allclose(s["std"].ravel(), img.reshape(-1, 3).std(0) / 255)
    assert s["count"].tolist() == [30]


def _rewrite_data(root: Path, change) -> None:
    path = root / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _set_column(table: pa.Table, name: str, fn) -> pa.Table:
    values = fn(table[name].to_numpy().copy())
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type))


def _edit_json(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def _gap(v):
    return v + 1


def _bad_timestamp(v):
    v[2] += 0.01
    return v


def _drop_q50(s):
    del s["action"]["q50"]


CORRUPTIONS = {
    "gap in index": (lambda r: _rewrite_data(r, lambda t: _set_column(t, "index", _gap)), "index not global"),
    "wrong timestamp": (lambda r: _rewrite_data(r, lambda t: _set_column(t, "timestamp", _bad_timestamp)), "timestamp"),
    "missing stats key": (lambda r: _edit_json(r / "meta/stats.json", _drop_q50), "lacks 'q50'"),
    "total_frames": (lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(total_frames=21)), "total_frames"),
    "unknown task": (lambda r: _rewrite_data(r, lambda t: _set_column(t, "task_index", lambda v: v + 5)), "task_index"),
    "missing feature": (lambda r: _rewrite_data(r, lambda t: t.drop_columns(["synth.phase"])), "'synth.phase' missing"),
    "short video": (
        lambda r: shutil.copy(
            r / "videos/observation.images.front/chunk-000/file-001.mp4",
            r / "videos/observation.images.front/chunk-000/file-000.mp4",
        ),
        "absent",
    ),
    "frame_index": (lambda r: _rewrite_data(r, lambda t: _set_column(t, "frame_index", _gap)), "frame_index"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_validate_catches(kind, dataset, tmp_path):
    src, _ = dataset
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    corrupt, needle = CORRUPTIONS[kind]
    corrupt(root)
    problems = LeRobotDir(root).validate()
    assert any(needle in p for p in problems), problems


def test_batched_episode_stats_are_those_of_one_padded_array():
    """episodes_array_stats sums a vector feature in groups of similar length: bit for bit what one array padded
    to the longest episode gives (signed zeros included), and per episode what array_stats gives."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 160, 150)
    x = rng.normal(size=(int(lengths.sum()), 7)).astype(np.float32)
    x[: lengths[0], 2] = -0.0  # a sum of -0.0 that the padding turns to 0.0
    x[:, 5] = -0.0
    got = episodes_array_stats(x, lengths)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    one = _padded_stats(x.astype(np.float64), starts, lengths, lengths < lengths.max())
    for k in got:
        assert got[k].tobytes() == one[k].tobytes(), k
    for e in (0, 17, 149):
        ref = array_stats(x[starts[e] : starts[e] + lengths[e]])
        for k in ("min", "max", "mean", "std", "q50"):
            np.testing.assert_allclose(got[k][e], ref[k], rtol=1e-12, atol=1e-12)
