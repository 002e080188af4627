"""Real LeRobot (0.4.4) loads what synth writes. Skipped unless lerobot is importable (never a synth dependency).

Harness venv (outside synth's dependencies; the torch wheel is a local CPU build):
    python3.11 -m venv /work/lerobot-venv && P=/work/lerobot-venv/bin/pip
    $P install torch==2.13.0 && $P install --no-deps lerobot==0.4.4
    echo torch==2.13.0 > /tmp/c.txt && $P install -c /tmp/c.txt "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" \
        "av>=15,<16" "jsonlines>=4,<5" "packaging>=24.2,<26" pandas pyarrow numpy pillow "accelerate>=1.10,<2" pytest
    plus a stub package site-packages/torchvision/ (no usable CPU torchvision exists here) providing only
    set_video_backend, io.VideoReader (pyav backend on PyAV), transforms.ToTensor, transforms.v2.Transform.
Run:
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH=/work/main \
        /work/lerobot-venv/bin/python -m pytest -p no:cacheprovider /work/main/tests/test_lerobot_compat.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_CACHE", str(Path(tempfile.gettempdir()) / "synth-lerobot-compat-cache"))

lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")
compute_stats = pytest.importorskip("lerobot.datasets.compute_stats")
torch = pytest.importorskip("torch")

from test_dataset_format import TASKS, build_dataset  # noqa: E402  (sibling module; tests/ is on sys.path)

from synth.dataset.reader import LeRobotDir  # noqa: E402
from synth.dataset.stats import STAT_KEYS, episode_stats, stats_from_row  # noqa: E402
from synth.dataset.video import read_frames  # noqa: E402

FPS = 15
CAMERAS = {"front": (64, 64), "wrist": (64, 64)}


@pytest.fixture(scope="module", params=["h264", "av1"])
def written(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"lerobot-{request.param}")
    truth = build_dataset(root, lengths=(8, 11, 6), files=((0, 1), (2,)), cameras=CAMERAS, fps=FPS, codec=request.param)
    return root, truth


def test_reader_validates(written):
    root, _ = written
    assert LeRobotDir(root).validate() == []


def test_lerobot_loads_every_item(written):
    root, truth = written
    ds = lerobot_dataset.LeRobotDataset(repo_id="synth/test", root=root, video_backend="pyav")
    assert ds.num_episodes == 3 and len(ds) == 25 and ds.fps == FPS
    assert sorted(ds.meta.video_keys) == [f"observation.images.{c}" for c in CAMERAS]
    assert list(ds.meta.tasks.index) == TASKS
    flat = [(e, t) for e, ep in enumerate(truth["episodes"]) for t in range(len(ep["index"]))]
    for i in range(len(ds)):
        item = ds[i]
        e, t = flat[i]
        want = truth["episodes"][e]
        assert item["episode_index"].item() == e and item["frame_index"].item() == t and item["index"].item() == i
        assert item["task"] == TASKS[want["task_index"][t]]
        for key in ("observation.state", "action", "observation.ee_pose"):
            assert item[key].dtype == torch.float32 and item[key].shape == (want[key].shape[1],)
            np.testing.assert_array_equal(item[key].numpy(), want[key][t], err_msg=key)
        assert item["synth.phase"].dtype == torch.int64 and item["synth.phase"].shape == ()
        assert item["synth.phase"].item() == want["synth.phase"][t]
        assert item["synth.progress"].item() == pytest.approx(float(want["synth.progress"][t]))
        assert item["timestamp"].item() == pytest.approx(t / FPS, abs=1e-6)
        for cam, (h, w) in CAMERAS.items():
            key = f"observation.images.{cam}"
            img = item[key]
            assert img.shape == (3, h, w) and img.dtype == torch.float32
            assert 0.0 <= img.min().item() and img.max().item() <= 1.0
            hwc = (img.permute(1, 2, 0).numpy() * 255).round().astype(int)
            assert np.abs(hwc - want[key][t]).mean() < 4, (key, i)  # lossy codec, same frame
            ep = ds.meta.episodes[e]
            t0 = ep[f"videos/{key}/from_timestamp"]
            ours = read_frames(root / ds.meta.get_video_file_path(e, key), t0 + t / FPS, t0 + (t + 1) / FPS, FPS)
            np.testing.assert_array_equal(hwc, ours[0])  # bit-identical to synth's own decoder


def test_lerobot_delta_timestamps_and_dataloader(written):
    root, truth = written
    deltas = {"action": [0.0, 1 / FPS, 2 / FPS], "observation.images.front": [-1 / FPS, 0.0]}
    ds = lerobot_dataset.LeRobotDataset(repo_id="synth/test", root=root, delta_timestamps=deltas, video_backend="pyav")
    last = ds[len(ds) - 1]  # last frame of episode 2: future actions are padded
    assert last["action"].shape == (3, 3) and last["action_is_pad"].tolist() == [False, True, True]
    np.testing.assert_array_equal(last["action"][0].numpy(), truth["episodes"][2]["action"][-1])
    first = ds[8]  # first frame of episode 1: the previous image is padded
    assert first["observation.images.front"].shape == (2, 3, 64, 64)
    assert first["observation.images.front_is_pad"].tolist() == [True, False]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["observation.state"].shape == (4, 4) and batch["observation.images.wrist"].shape == (4, 3, 64, 64)


def test_lerobot_metadata_and_stats(written):
    root, truth = written
    meta = lerobot_dataset.LeRobotDatasetMetadata("synth/test", root=root)
    assert meta.total_episodes == 3 and meta.total_frames == 25 and meta.total_tasks == 2
    for key in truth["features"]:
        assert set(STAT_KEYS) <= set(meta.stats[key]), key
    assert meta.stats["observation.images.front"]["mean"].shape == (3, 1, 1)
    # per-episode stats agree with lerobot's own functions (std of images: lerobot's uint8 overflow excepted)
    ep = truth["episodes"][1]
    ours = episode_stats(
        {"action": ep["action"], "timestamp": ep["timestamp"]}, {"img": ep["observation.images.front"]}
    )
    for key in ("action", "timestamp"):
        theirs = compute_stats.get_feature_stats(ep[key], axis=0, keepdims=ep[key].ndim == 1)
        for k in STAT_KEYS:
            np.testing.assert_allclose(ours[key][k], theirs[k], rtol=1e-5, atol=1e-6, err_msg=f"{key}/{k}")
    chw = ep["observation.images.front"].transpose(0, 3, 1, 2).astype(np.float64)  # float: no overflow
    theirs = compute_stats.get_feature_stats(chw, axis=(0, 2, 3), keepdims=True)
    for k in STAT_KEYS:
        want = theirs[k] if k == "count" else np.squeeze(theirs[k] / 255.0, axis=0)
        np.testing.assert_allclose(ours["img"][k], want, rtol=1e-6, atol=1e-9, err_msg=k)
    # aggregation equals lerobot's aggregate_stats over the per-episode stats stored in the episodes table
    rows = LeRobotDir(root).episodes.to_dict("records")
    per_episode = [
        {
            f: {k: np.asarray(v, np.float64) if k != "count" else np.asarray(v) for k, v in s.items()}
            for f, s in r.items()
        }
        for r in (stats_from_row({k: _nested(v) for k, v in row.items()}) for row in rows)
    ]
    theirs = compute_stats.aggregate_stats(per_episode)
    for key, s in theirs.items():
        for k, v in s.items():
            np.testing.assert_allclose(np.asarray(meta.stats[key][k], np.float64), v, rtol=1e-9, err_msg=f"{key}/{k}")


def _nested(value):
    """pandas gives nested lists from parquet as object arrays of arrays; make plain nested lists."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_nested(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray) else value
