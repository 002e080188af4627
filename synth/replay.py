"""Rebuild an episode from its dataset record: scene from (seed, attempt), physics from its actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth import focus
from synth.backends.base import make
from synth.counterfactual import variant
from synth.embodiment import load
from synth.errors import ConfigError
from synth.execute import executed, run, substeps
from synth.physics import recorded
from synth.randomize import apply, slots
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout, build, initial_qpos


@dataclass
class Replay:
    model: mujoco.MjModel
    qpos: np.ndarray  # (T+1, nq) at the control rate
    recorded_state: np.ndarray  # (T, S) observation.state as written
    replayed_state: np.ndarray  # (T, S) the same, from the replay
    fps: float
    meta: dict


def episode_record(root: Path, episode: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(episodes-table row, executed joint targets (T, A), observation.state (T, S)) of one episode."""
    info = json.loads((root / "meta" / "info.json").read_text())
    if not 0 <= episode < info["total_episodes"]:
        raise ConfigError(f"episode={episode}: the dataset has episodes 0..{info['total_episodes'] - 1}")
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        t = pq.read_table(path)
        hit = t.filter(pc.equal(t["episode_index"], episode))
        if hit.num_rows:
            row = hit.to_pylist()[0]
            break
    data = root / info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
    executed = "synth.joint_target" if "synth.joint_target" in info["features"] else "action"
    d = pq.read_table(data, columns=["episode_index", executed, "observation.state"])
    d = d.filter(pc.equal(d["episode_index"], episode))
    return row, np.asarray(d[executed].to_pylist()), np.asarray(d["observation.state"].to_pylist())


def replay(root: Path, episode: int, resolution: tuple[int, int] | None = None) -> Replay:
    """Re-simulate an episode; `resolution` sizes the offscreen buffer for rendering it."""
    row, actions, state = episode_record(root, episode)
    synth = json.loads((root / "meta" / "synth.json").read_text())
    cfg, meta = synth["config"], json.loads(row["synth/meta"])
    task = TASKS.build(synth["task"], cfg["task"])
    rands = [RANDOMIZERS.build(n, node) for n, node in (cfg.get("randomizers") or {}).items()]
    emb = load(cfg["embodiment"]["name"])
    k = int(cfg.get("counterfactuals", 1))  # counterfactual pairs share their group's scene (synth/counterfactual.py)
    group, v = divmod(int(meta["attempt"]), k)
    scene, _ = apply(rands, task.scene(), cfg["seed"], group, focus.key(focus.candidate(meta.get("draws") or {})))
    if k > 1:
        cf = variant(scene, v)
        assert cf is not None, f"attempt {meta['attempt']} was written, so its counterfactual exists"
        scene = cf[0]
    res = resolution or tuple(cfg["resolution"])
    model = build(scene, emb, slots(task.scene(), rands), res, float(cfg["control_hz"]), recorded(synth))
    lay = Layout(model, emb)
    hz = float(cfg["control_hz"])
    q0 = initial_qpos(model, emb, lay)[None]
    ran = executed(actions, scene, emb.start, emb.arm_columns, emb.gripper_columns, hz, cfg["seed"], meta["attempt"])
    engine = make(cfg.get("backend", "mujoco"))  # the engine that wrote the episode
    out = run(engine, [model], q0, ran[None], emb.start[None], substeps(model, hz), emb.scale)
    qpos = out["qpos"][0][: len(actions) + 1]
    replayed = lay.state(qpos[:-1])
    return Replay(model, qpos, state, replayed, hz, meta)
