"""Open-loop action error on any LeRobot v3.0 dataset (e.g. a real robot's): the sim-to-real check that needs
no robot. For frames of sampled episodes the policy predicts a chunk from the recorded observation; the error
against the recorded actions is reported per horizon step, in the dataset's units and normalized by its std.
Only the sampled episodes are decoded, so a large dataset costs what its sample costs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synth.dataset.reader import LeRobotDir
from synth.errors import ConfigError
from synth.vla import checkpoint, report
from synth.vla.data import card_of, video_key


def open_loop(pol, cfg) -> dict:
    ds = LeRobotDir(cfg.data)
    if not (ds.root / "meta" / "info.json").is_file():
        raise ConfigError(f"data={cfg.data}: not a LeRobot v3.0 dataset (no meta/info.json)")
    card = card_of(ds)
    robot = card["robot"]
    stats = {
        k: {s: np.asarray(ds.stats[name][s], np.float64).reshape(-1) for s in ("mean", "std")}
        for k, name in (("state", "observation.state"), ("action", "action"))
    }
    if robot not in pol.norm.stats:  # another body: normalize by the dataset's own statistics
        pol.norm.stats[robot] = {k: {s: v.tolist() for s, v in stats[k].items()} for k in stats}
    keys = {c: video_key(ds, c) for c in pol.cameras}
    tasks = {i: t for t, i in ds.tasks.items()}
    rng = np.random.default_rng(cfg.seed)
    episodes = ds.episodes["episode_index"].to_numpy().copy()
    rng.shuffle(episodes)
    H = pol.horizon
    errs, valids, used = [], [], 0
    for e in episodes:
        if used >= cfg.frames:
            break
        ep = ds.episode(int(e))
        T = len(ep["action"])
        per = max(8, -(-cfg.frames // len(episodes)))  # frames per decoded episode
        take = np.sort(rng.choice(T, size=min(T, per, cfg.frames - used), replace=False))
        images = {c: ep[k][take] for c, k in keys.items()} if keys else None
        texts = [tasks[int(t)] for t in ep["task_index"][take]]
        state = np.asarray(ep["observation.state"], np.float64)[take]
        pred = pol.act(
            card, texts, state, images, ds.fps, cfg.sampling_steps, seed=cfg.seed + used, temperature=cfg.temperature
        )
        steps = take[:, None] + np.arange(H)[None]
        truth = np.asarray(ep["action"], np.float64)[np.minimum(steps, T - 1)]
        if pred.shape[-1] != truth.shape[-1]:
            raise ConfigError(
                f"data={cfg.data}: {truth.shape[-1]} action dimensions; the policy predicts {pred.shape[-1]}"
            )
        errs.append(pred - truth)
        valids.append(steps < T)
        used += len(take)
    err, valid = np.concatenate(errs), np.concatenate(valids)
    std = np.maximum(stats["action"]["std"], 1e-3)
    w = valid[..., None]
    mae = (np.abs(err) * w).sum(0) / np.maximum(w.sum(0), 1)  # (H, A)
    nmse = ((err / std) ** 2 * w).sum(0) / np.maximum(w.sum(0), 1)
    rep = {
        "policy": str(pol.dir),
        "data": str(ds.root.resolve()),
        "frames": int(used),
        "robot": robot,
        "action_names": card.get("action", {}).get("names", []),
        "mae_per_step": mae.mean(1).tolist(),  # (H,) [action units, averaged over dimensions]
        "mae_per_dim": mae.mean(0).tolist(),  # (A,)
        "nmse_per_step": nmse.mean(1).tolist(),  # (H,) [squared, in units of the dataset's action std]
        "nmse": float(nmse.mean()),
    }
    out = checkpoint.run_of(pol.dir) / "eval" / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "openloop.json").write_text(json.dumps(rep, indent=1))
    lines = [
        f"# Open-loop action error of `{pol.dir}` on `{cfg.data}` ({used} frames)",
        "",
        "| horizon step | MAE (action units) | normalized MSE |",
        "|---|---|---|",
    ]
    lines += [f"| {h} | {mae.mean(1)[h]:.4f} | {nmse.mean(1)[h]:.4f} |" for h in range(H)]
    (out / "openloop.md").write_text("\n".join(lines) + "\n")
    _plot(out / "openloop.png", rep)
    print("\n".join(lines))
    print(f"report: {out / 'openloop.md'}")
    return rep


def _plot(path: Path, rep: dict) -> None:
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(np.arange(len(rep["nmse_per_step"])), rep["nmse_per_step"], marker="o")
    ax.set_xlabel("horizon step")
    ax.set_ylabel("normalized MSE")
    ax.set_title("open-loop action error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
