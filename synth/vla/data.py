"""Training data: LeRobot v3.0 datasets held as flat arrays, camera frames decoded once into a uint8 memmap
cache at the model's resolution (nanoGPT style: prepared offline, memory-mapped), sampled by mixture weight.

Per dataset: state (N, S) and action (N, A) as written, episode bounds per frame, the prompt id per frame.
A sample is frame i: its state, its images, and the action chunk a[i : i + H] (steps past the episode end
repeat the last action and are masked out of the loss); synth.vla.batches draws them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from synth.dataset.reader import LeRobotDir
from synth.errors import ConfigError


def card_of(ds: LeRobotDir) -> dict:
    """The dataset's embodiment card: synth writes one per dataset; other LeRobot datasets get a minimal one."""
    path = ds.root / "meta" / "synth.json"
    if path.is_file():
        cards = list(json.loads(path.read_text()).get("embodiments", {}).values())
        if cards:
            return cards[0]
    names = ds.features.get("action", {}).get("names") or []
    return {
        "robot": ds.info.get("robot_type") or "unknown",
        "arm": "arm",
        "dof": max(0, len(names) - 1),
        "action": {"convention": "unknown", "names": names},
        "control_hz": ds.fps,
        "cameras": [k.split(".")[-1] for k in ds.video_keys],
    }


@dataclass
class Source:
    """One dataset in memory: arrays over its N frames in global `index` order."""

    root: Path
    card: dict
    fps: float
    state: np.ndarray  # (N, S) float32 [dataset units]
    action: np.ndarray  # (N, A) float32
    start: np.ndarray  # (N,) int64 first frame of the frame's episode
    stop: np.ndarray  # (N,) int64 one past its last frame
    episode: np.ndarray  # (N,) int64 episode index
    task: np.ndarray  # (N,) int64 task_index
    tasks: list[str]  # text by task_index
    images: dict[str, np.ndarray]  # camera -> (N, R, R, 3) uint8 memmap
    stats: dict[str, dict[str, np.ndarray]]  # {"state"|"action": {"mean", "std"}}
    aux: np.ndarray | None = None  # (N, len(AUX)) standardized per dataset, NaN where unknown (training only)
    still: np.ndarray | None = None  # (N,) bool: the task object has not moved yet in its episode (synth data)
    imitate: np.ndarray | None = None  # (N,) bool: frames whose actions the policy learns (None: all; see IGNORED)
    aux_mirror: np.ndarray | None = None  # (len(AUX),) a target's standardized value in the scene mirrored y -> -y
    #                                       is aux * MIRROR_SIGN + aux_mirror (see mirror)

    @property
    def frames(self) -> int:
        return len(self.state)


AUX = ("object_x", "object_y", "object_z", "object_from_hand_x", "object_from_hand_y", "object_from_hand_z",
       "target_x", "target_y", "grasp_c", "grasp_s",
       "near_x", "near_y", "near_z", "near_grasp_c", "near_grasp_s")  # fmt: skip
"""The auxiliary targets [m, world frame]: the task object, the object seen from the hand, the place target, the
way the expert's fingers close on it (`grasp_*`: cos and sin of twice the closing direction's yaw, as a parallel
gripper closes the same either way round; defined before the object moves, NaN for round objects, which any side
fits), and the object seen from the hand and that closing yaw again but only where a grasp is aimed (`near_*`:
before the object moves, with the hand within NEAR of it horizontally; NaN elsewhere), standardized over those
frames alone so that their centimetres are not drowned by the reach's decimetres."""
NEAR_AUX = 5  # the last NEAR_AUX targets are the near ones (a model's near head predicts them, see model.VLA)
ROUND = ("sphere", "cylinder")  # shapes a parallel gripper takes from any side: no grasp yaw to learn
STILL = 0.003  # [m] an object within this of where its episode placed it has not been moved yet
NEAR = 0.10  # [m] hand-object horizontal distance within which the near targets are defined
MIRROR_SIGN = np.array([1, -1, 1, 1, -1, 1, 1, -1, 1, -1, 1, -1, 1, 1, -1], np.float32)  # y -> -y: y and yaw flip
IGNORED = ("miss",)
"""Phases (`synth.phase`) whose frames the policy does not imitate: the deliberate miss of a recovery
demonstration (randomizers/regrasp.py), from the episode's start to the end of its missed close, and the descent
of a near miss (randomizers/near_miss.py) to where it stops. Their action chunks are masked out of the flow loss,
while their images and aux targets still train the aux and near heads (both stages); the frames after them, the
recovery or correction, are imitated."""


def aux_targets(
    ds: LeRobotDir, t: pa.Table, episode: np.ndarray, start: np.ndarray, still: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(N, len(AUX)) standardized auxiliary targets of a synth dataset (NaN where a dataset or episode lacks one)
    and their mirror offsets (len(AUX),) (see Source.aux_mirror), or None for datasets without
    `synth.object_pose`. episode, start (N,): each frame's episode and its first frame (as Source); still (N,)
    bool: the frames before the task object moves (the grasp and near targets need it)."""
    if "synth.object_pose" not in t.column_names:
        return None
    n = len(episode)
    out = np.full((n, len(AUX)), np.nan, np.float64)
    xyz = column(t, "synth.object_pose")[:, :3]
    out[:, :3] = xyz
    eps = ds.episodes
    draws = {}
    if "synth/meta" in eps.columns:
        draws = {
            int(e): json.loads(m).get("draws", {}) for e, m in zip(eps["episode_index"], eps["synth/meta"], strict=True)
        }
        where = {
            e: (d["target"]["x"], d["target"]["y"]) for e, d in draws.items() if {"x", "y"} <= set(d.get("target", {}))
        }
        xy = np.array([where.get(int(e), (np.nan, np.nan)) for e in range(int(episode.max()) + 1)])
        out[:, 6:8] = xy[episode]
    if "observation.ee_pose" in t.column_names:
        ee = column(t, "observation.ee_pose")
        out[:, 3:6] = xyz - ee[:, :3]
        if still is not None:
            shapes = [draws.get(e, {}).get("object_shape", {}).get("shape") for e in range(int(episode.max()) + 1)]
            round_ = np.isin(np.asarray(shapes, object), ROUND)[episode]
            out[:, 8:10] = np.where((still & ~round_)[:, None], grasp_yaw(ds, t, ee, start), np.nan)
            near = still & (np.linalg.norm(out[:, 3:5], axis=1) < NEAR)
            out[near, 10:13] = out[near, 3:6]
            out[near, 13:15] = out[near, 8:10]
    with warnings.catch_warnings():  # an all-NaN column (no ee pose, no target) stays NaN: masked out
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(out, 0), np.nanstd(out, 0)
    std = np.maximum(np.nan_to_num(std), 1e-3)
    # standardized z = (v - m) / s; mirrored v' = -v for the y columns, so z' = -z - 2 m / s there
    offset = np.where(MIRROR_SIGN < 0, -2 * np.nan_to_num(mean) / std, 0.0)
    return ((out - mean) / std).astype(np.float32), offset.astype(np.float32)


def grasp_yaw(ds: LeRobotDir, t: pa.Table, ee: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(N, 2) cos and sin of twice the yaw of the hand's closing direction (its y axis; ee (N, 7) x, y, z, qw, qx,
    qy, qz) at the frame where its episode's gripper is first told to close (below half its first command), for
    every frame of the episode (start (N,): its first frame, as Source.start); NaN for episodes that never close
    or data without a gripper."""
    names = ds.features.get("action", {}).get("names") or []
    out = np.full((len(start), 2), np.nan)
    if "gripper" not in names:
        return out
    g = column(t, "action")[:, names.index("gripper")]
    n = len(start)
    is_first = start == np.arange(n)
    shut = np.minimum.reduceat(np.where(g < 0.5 * g[start], np.arange(n), n), np.flatnonzero(is_first))  # n: never
    k = shut[np.cumsum(is_first) - 1]  # per frame, its episode's first close
    w, x, y, z = ee[:, 3:7].T.astype(np.float64)
    yaw = np.arctan2(1 - 2 * (x * x + z * z), 2 * (x * y - w * z))  # of the rotation's y column, projected on x-y
    ok = k < n
    out[ok, 0], out[ok, 1] = np.cos(2 * yaw[k[ok]]), np.sin(2 * yaw[k[ok]])
    return out


def column(t: pa.Table, name: str) -> np.ndarray:
    """(N, D) float32 of a fixed-size-list column."""
    col = t[name].combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32)


def load(root: str | Path, cameras: tuple[str, ...], resolution: int, cache: Path) -> Source:
    """Read a dataset's frames; decode `cameras` (short names: front, wrist) into the cache if not there yet."""
    ds = LeRobotDir(root)
    if not (ds.root / "meta" / "info.json").is_file():
        raise ConfigError(f"data={root}: not a LeRobot v3.0 dataset (no meta/info.json); run `synth generate` first")
    cols = ["index", "episode_index", "task_index", "observation.state", "action"]
    extra = [c for c in ("synth.object_pose", "observation.ee_pose", "synth.phase") if c in ds.features]
    files = [str(p) for p in ds.data_files()]
    t = pq.ParquetDataset(files).read(columns=cols + extra).sort_by("index")
    index = t["index"].to_numpy()
    if not np.array_equal(index, np.arange(len(index))):
        raise ConfigError(f"data={root}: frame indices are not 0..N-1; the dataset is incomplete or damaged")

    episode = t["episode_index"].to_numpy().astype(np.int64)
    change = np.r_[True, episode[1:] != episode[:-1]]
    first = np.flatnonzero(change)
    lengths = np.diff(np.r_[first, len(episode)])
    start = np.repeat(first, lengths)
    stats = {
        k: {s: np.asarray(ds.stats[name][s], np.float32).reshape(-1) for s in ("mean", "std")}
        for k, name in (("state", "observation.state"), ("action", "action"))
    }
    images = {cam: _frames(ds, cam, resolution, cache) for cam in cameras}
    still = None
    if "synth.object_pose" in t.column_names:  # frames before the object is touched: where it must be found
        xyz = column(t, "synth.object_pose")[:, :3]
        still = np.abs(xyz - xyz[start]).max(1) < STILL
    imitate = None
    if "synth.phase" in t.column_names:
        names = ds.features["synth.phase"].get("names") or []
        skip = [k for k, n in enumerate(names) if n in IGNORED]
        if skip:
            imitate = ~np.isin(t["synth.phase"].to_numpy(), skip)
    # where things are: targets that teach the vision encoder to find them
    targets = aux_targets(ds, t, episode, start, still)
    aux, aux_mirror = targets if targets is not None else (None, None)
    return Source(
        root=ds.root,
        card=card_of(ds),
        fps=ds.fps,
        state=column(t, "observation.state"),
        action=column(t, "action"),
        start=start,
        stop=start + np.repeat(lengths, lengths),
        episode=episode,
        task=t["task_index"].to_numpy().astype(np.int64),
        tasks=[k for k, _ in sorted(ds.tasks.items(), key=lambda kv: kv[1])],
        images=images,
        stats=stats,
        aux=aux,
        still=still,
        imitate=imitate,
        aux_mirror=aux_mirror,
    )


def video_key(ds: LeRobotDir, camera: str) -> str:
    keys = {k.split(".")[-1]: k for k in ds.video_keys}
    if camera not in keys:
        have = ", ".join(keys) or "none"
        raise ConfigError(
            f"data={ds.root}: no camera '{camera}' (it has: {have}); generate with cameras=[...] or train vision=false"
        )
    return keys[camera]


def _frames(ds: LeRobotDir, camera: str, resolution: int, cache: Path) -> np.ndarray:
    """(N, R, R, 3) uint8 memmap of one camera at `resolution`, built once per (dataset, camera, resolution)."""
    key = video_key(ds, camera)
    n = int(ds.info["total_frames"])
    tag = hashlib.sha1(f"{ds.root.resolve()}|{n}|{ds.info.get('total_episodes')}".encode()).hexdigest()[:12]
    path = cache / f"{tag}-{camera}-{resolution}.u8"
    shape = (n, resolution, resolution, 3)
    if path.is_file() and path.stat().st_size == int(np.prod(shape)):
        return np.memmap(path, np.uint8, "r", shape=shape)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.partial")
    out = np.memmap(tmp, np.uint8, "w+", shape=shape)
    ep = ds.episodes
    files = ep.groupby([f"videos/{key}/chunk_index", f"videos/{key}/file_index"], sort=True)
    for (chunk, file), rows in files:
        video = ds.root / ds.info["video_path"].format(video_key=key, chunk_index=int(chunk), file_index=int(file))
        frames = _decode_all(video, resolution)
        for _, row in rows.iterrows():
            k0 = round(float(row[f"videos/{key}/from_timestamp"]) * ds.fps)
            a, b = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            out[a:b] = frames[k0 : k0 + (b - a)]
    out.flush()
    del out
    tmp.replace(path)
    return np.memmap(path, np.uint8, "r", shape=shape)


def _decode_all(path: Path, resolution: int) -> np.ndarray:
    """Every frame of an mp4 resized to (R, R): (F, R, R, 3) uint8, in presentation order."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        return np.zeros((0, resolution, resolution, 3), np.uint8)
    x = np.stack(frames)
    return np.concatenate([resize(x[k : k + 512], resolution) for k in range(0, len(x), 512)])


def resize(images: np.ndarray, resolution: int) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., R, R, 3) uint8, as the cache does it (for closed-loop frames)."""
    if images.shape[-3:-1] == (resolution, resolution):
        return images
    lead = images.shape[:-3]
    t = torch.from_numpy(np.ascontiguousarray(images.reshape(-1, *images.shape[-3:]))).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return t.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy().reshape(*lead, resolution, resolution, 3)
