"""Open-loop action error on any LeRobot v3.0 dataset (e.g. a real robot's): the sim-to-real check that needs
no robot. For sampled frames the policy predicts a chunk from the recorded observation; the error against the
recorded actions is reported per horizon step, in the dataset's units and normalized by its action std."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.errors import ConfigError
from synth.vla import report
from synth.vla.data import load


def open_loop(pol, cfg) -> dict:
    run = Path(pol.dir).parent.parent if Path(pol.dir).parent.name == "checkpoints" else Path(pol.dir)
    src = load(cfg.data, pol.cameras, pol.cfg.resolution, run / "cache")
    robot = src.card["robot"]
    if robot not in pol.norm.stats:  # another body: normalize by the dataset's own statistics
        pol.norm.stats[robot] = {k: {s: v.tolist() for s, v in src.stats[k].items()} for k in ("state", "action")}
    rng = np.random.default_rng(cfg.seed)
    idx = np.sort(rng.choice(src.frames, size=min(cfg.frames, src.frames), replace=False))
    H, A = pol.horizon, src.action.shape[1]
    err = np.zeros((0, H, A))
    valid = np.zeros((0, H), bool)
    for k in range(0, len(idx), 64):
        i = idx[k : k + 64]
        images = {c: np.asarray(src.images[c][i]) for c in pol.cameras} if pol.cameras else None
        texts = [src.tasks[t] for t in src.task[i]]
        pred = pol.act(src.card, texts, src.state[i], images, src.fps, cfg.sampling_steps, seed=cfg.seed + k)
        steps = i[:, None] + np.arange(H)[None]
        ok = steps < src.stop[i, None]
        truth = src.action[np.minimum(steps, src.stop[i, None] - 1)]
        if pred.shape[-1] != A:
            raise ConfigError(f"data={cfg.data}: {A} action dimensions; the policy predicts {pred.shape[-1]}")
        err = np.concatenate([err, pred - truth])
        valid = np.concatenate([valid, ok])
    std = np.maximum(src.stats["action"]["std"], 1e-3)
    w = valid[..., None]
    mae = (np.abs(err) * w).sum(0) / np.maximum(w.sum(0), 1)  # (H, A)
    nmse = ((err / std) ** 2 * w).sum(0) / np.maximum(w.sum(0), 1)
    rep = {
        "policy": str(pol.dir),
        "data": str(Path(cfg.data).resolve()),
        "frames": len(idx),
        "robot": robot,
        "action_names": src.card.get("action", {}).get("names", []),
        "mae_per_step": mae.mean(1).tolist(),  # (H,) [action units, averaged over dimensions]
        "mae_per_dim": mae.mean(0).tolist(),  # (A,)
        "nmse_per_step": nmse.mean(1).tolist(),  # (H,) [in units of the dataset's action std, squared]
        "nmse": float(nmse.mean()),
    }
    out = run / "eval" / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    import json

    (out / "openloop.json").write_text(json.dumps(rep, indent=1))
    lines = [
        f"# Open-loop action error of `{pol.dir}` on `{cfg.data}` ({len(idx)} frames)",
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
