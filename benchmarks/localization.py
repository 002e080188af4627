"""Can the VLA's encoder find the named object in scenes it has not seen? A 2-10 minute probe of the one skill
closed-loop pick_place needs most, instead of a 60-minute training run and an eval.

    python benchmarks/localization.py --train data/pp --val data/val      # val: e.g. n=40 with another seed
    python benchmarks/localization.py --train data/pp --val data/val --no-film --steps 600
    python benchmarks/localization.py --train data/pp --val data/val --cameras front --mirror   # y -> -y flips
    python benchmarks/localization.py --train data/pp --val data/val --cameras front --no-state --keypoints-only
    python benchmarks/localization.py --train data/pp --val data/val --policy runs/pp   # a trained policy's aux head
    python benchmarks/localization.py --train data/pp --val data/val --cameras wrist --relative 0.08  # from the hand

It trains `model=tiny`'s conv encoder (FiLM on the prompt, keypoints) with the auxiliary head alone on the
training dataset's pre-motion frames (the task object still where it was placed: the frames a policy must
localize it from), then reports every --every steps the training loss and, on the first frame of every
validation episode, the error [cm] of the predicted object x, y (with --relative: on every validation frame with the
hand near, and the height too). The gap between the two says whether the
encoder learns to find objects or memorizes the training scenes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from synth.dataset.reader import LeRobotDir
from synth.vla.batches import Normalizer, augment, pad
from synth.vla.data import Source, column, load
from synth.vla.model import VLA, build
from synth.vla.train import TextTable, norm_stats, prompt_table


def object_xyz(root: str, key: str = "synth.object_pose") -> np.ndarray:
    """(N, 3) synth.object_pose (or `key`'s) positions [m] in frame order."""
    ds = LeRobotDir(root)
    t = pq.ParquetDataset([str(p) for p in ds.data_files()]).read(columns=["index", key])
    return column(t.sort_by("index"), key)[:, :3].astype(np.float64)


def untouched(xyz: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Frames whose task object (positions xyz (N, 3) [m]) is still within 3 mm of where its episode began."""
    return np.flatnonzero(np.abs(xyz - xyz[start]).max(1) < 0.003)


def inputs(
    src: Source, i: np.ndarray, ids: np.ndarray, text: TextTable, norm: Normalizer, cams, state: bool = True
) -> dict:
    s = norm.normalize(src.card["robot"], "state", src.state[i])
    b = {
        "state": torch.from_numpy(pad(s, 32)),
        "state_mask": (torch.arange(32) < src.state.shape[1] * state).expand(len(i), -1),
        "images": torch.from_numpy(np.stack([src.images[c][i] for c in cams], 1)),
    }
    b["text"], b["text_mask"] = text.rows(torch.from_numpy(ids[src.task[i]]), torch.device("cpu"))
    return b


def policy_error(path: str, train: str, val: str, cache: Path) -> None:
    """Print a trained policy's aux-head error [cm] for the task object's x, y on the first frame of every
    validation episode (what it believes before it moves, from images it never trained on)."""
    from synth.vla.policy import Policy

    pol = Policy(path)
    cfg = pol.cfg
    if not cfg.aux:
        raise SystemExit(f"{path}: this policy has no aux head")
    va = load(val, cfg.cameras, cfg.resolution, cache)
    x_tr, x_va = object_xyz(train), object_xyz(val)
    mean, std = x_tr.mean(0), x_tr.std(0)  # the aux targets' standardization (data.aux_targets)
    firsts = np.flatnonzero(va.start == np.arange(va.frames))
    images = {c: va.images[c][firsts] for c in cfg.cameras}
    b = pol.inputs(va.card, [va.tasks[t] for t in va.task[firsts]], va.state[firsts], images, va.fps)
    with torch.no_grad():
        _, _, aux = pol.model.encode(b)
    err = 100 * (aux.numpy()[:, :2] * std[:2] + mean[:2] - x_va[firsts, :2])
    rms, med = np.sqrt((err**2).mean(0)), np.median(np.abs(err), 0)
    print(f"{pol.dir}: {len(firsts)} validation scenes, first frame, object x, y [cm]")
    print(
        f"RMS {rms[0]:.1f}, {rms[1]:.1f}; median {med[0]:.1f}, {med[1]:.1f}; within 2 cm (both): "
        f"{np.mean(np.abs(err).max(1) < 2):.0%}"
    )
    if cfg.near:  # the near head: the object from the hand where a grasp is aimed (data.AUX's near_*)
        near_error(pol, train, va, x_tr, x_va, cache)


def near_error(pol, train: str, va: Source, x_tr: np.ndarray, x_va: np.ndarray, cache: Path) -> None:
    """Print a policy's near-head error [cm] for the object from the hand (x, y) on the validation frames where
    its targets are defined (finite in data.aux_targets: untouched, hand within data.NEAR), and on those with the
    hand more than 1 cm off."""
    from synth.vla.data import AUX

    def near(src: Source) -> np.ndarray:
        assert src.aux is not None
        return np.flatnonzero(np.isfinite(src.aux[:, AUX.index("near_x")]))

    rel_tr = x_tr - object_xyz(train, "observation.ee_pose")
    tr = near(load(train, (), pol.cfg.resolution, cache))  # no cameras: the poses alone
    mean, std = rel_tr[tr].mean(0), rel_tr[tr].std(0)  # the near targets' standardization (data.aux_targets)
    rel_va = x_va - object_xyz(str(va.root), "observation.ee_pose")
    i = near(va)
    errs = []
    for k in range(0, len(i), 256):
        j = i[k : k + 256]
        images = {c: va.images[c][j] for c in pol.cfg.cameras}
        b = pol.inputs(va.card, [va.tasks[t] for t in va.task[j]], va.state[j], images, va.fps)
        with torch.no_grad():
            _, _, aux = pol.model.encode(b)
        errs.append(100 * (aux.numpy()[:, -pol.cfg.near :][:, :2] * std[:2] + mean[:2] - rel_va[j, :2]))
    err = np.concatenate(errs)
    off = np.linalg.norm(rel_va[i, :2], axis=1) > 0.01
    for name, e in (("all", err), ("hand > 1 cm off", err[off])):
        rms, med = np.sqrt((e**2).mean(0)), np.median(np.abs(e), 0)
        print(
            f"near head, {name} ({len(e)} frames), object from the hand x, y [cm]: RMS {rms[0]:.1f}, {rms[1]:.1f}; "
            f"median {med[0]:.1f}, {med[1]:.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--cache", default="", help="frame cache (default: <train>/../cache)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--shift", type=int, default=0, help="random-translation augmentation [px]")
    ap.add_argument("--no-film", action="store_true")
    ap.add_argument("--cameras", default="front,wrist")
    ap.add_argument("--no-state", action="store_true", help="the aux head gets no joint state")
    ap.add_argument(
        "--mirror", action="store_true", help="flip half the images left-right with y -> -y (implies --no-state)"
    )
    ap.add_argument("--keypoints-only", action="store_true", help="the aux head reads only the keypoints' positions")
    ap.add_argument("--keypoints", type=int, default=0, help="keypoints per camera (default: model=tiny's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--relative",
        type=float,
        default=0.0,
        help="[m] probe the object relative to the hand instead, on untouched frames with the hand this near",
    )
    ap.add_argument("--policy", default="", help="report a trained policy's aux-head error instead of training")
    a = ap.parse_args()
    if a.policy:
        policy_error(a.policy, a.train, a.val, Path(a.cache) if a.cache else Path(a.train).resolve().parent / "cache")
        return
    torch.manual_seed(a.seed)
    cams = tuple(a.cameras.split(","))
    use_state = not (a.no_state or a.mirror)
    cache = Path(a.cache) if a.cache else Path(a.train).resolve().parent / "cache"
    tr, va = load(a.train, cams, a.resolution, cache), load(a.val, cams, a.resolution, cache)
    x_tr, x_va = object_xyz(a.train), object_xyz(a.val)
    still = untouched(x_tr, tr.start)
    firsts = np.flatnonzero(va.start == np.arange(va.frames))
    mean, std = x_tr.mean(0), x_tr.std(0)
    if a.relative:  # the object from the hand (minus observation.ee_pose), on untouched frames with the hand near
        v_still = untouched(x_va, va.start)
        x_tr, x_va = x_tr - object_xyz(a.train, "observation.ee_pose"), x_va - object_xyz(a.val, "observation.ee_pose")
        still = still[np.linalg.norm(x_tr[still, :2], axis=1) < a.relative]
        firsts = v_still[np.linalg.norm(x_va[v_still, :2], axis=1) < a.relative]  # every such frame, not one each
        mean, std = x_tr[still].mean(0), x_tr[still].std(0)
    extra = {"keypoints": a.keypoints} if a.keypoints else {}
    cfg = build(
        "tiny",
        cameras=cams,
        resolution=a.resolution,
        aux=3,
        film=not a.no_film,
        depth=1,
        aux_grid=not a.keypoints_only,
        **extra,
    )
    model = VLA(cfg)
    prompts, ids = prompt_table([tr, va], cfg.horizon)
    text = TextTable("minilm", prompts, model)
    norm = Normalizer(norm_stats([tr]))
    parts = ("vision", "aux_head", "film", "state_proj", "text_proj")
    opt = torch.optim.AdamW([p for n, p in model.named_parameters() if n.startswith(parts)], lr=a.lr)
    rng = np.random.default_rng(a.seed)
    target = torch.from_numpy(((x_tr - mean) / std).astype(np.float32))
    print(f"{len(still)} of {tr.frames} training frames before the object moves; {len(firsts)} validation scenes")
    head = "| step | seconds | train MSE (std units) | val first-frame RMS x, y [cm] | val median abs x, y [cm] |"
    print(
        head + (" RMS x, y where the hand is > 1 cm off [cm] | height (z) RMS, median abs [cm] |" if a.relative else "")
    )
    print("|---|---|---|---|---|" + ("---|---|" if a.relative else ""))
    t0, losses = time.perf_counter(), []
    for step in range(a.steps + 1):
        if step % a.every == 0:
            model.eval()
            with torch.no_grad():
                _, _, aux = model.encode(inputs(va, firsts, ids[1], text, norm, cams, use_state))
            err3 = 100 * (aux.numpy() * std + mean - x_va[firsts])
            err = err3[:, :2]
            rms, med = np.sqrt((err**2).mean(0)), np.median(np.abs(err), 0)
            tl = np.mean(losses[-a.every :]) if losses else float("nan")
            off = ""
            if a.relative:  # the frames that matter: the hand more than 1 cm off the object
                far = np.linalg.norm(x_va[firsts, :2], axis=1) > 0.01
                r_far = np.sqrt((err[far] ** 2).mean(0))
                z = err3[:, 2]
                off = f" {r_far[0]:.1f}, {r_far[1]:.1f} ({far.sum()} frames) | {np.sqrt((z**2).mean()):.2f}, "
                off += f"{np.median(np.abs(z)):.2f} |"
            print(
                f"| {step} | {time.perf_counter() - t0:.0f} | {tl:.3f} | {rms[0]:.1f}, {rms[1]:.1f} | "
                f"{med[0]:.1f}, {med[1]:.1f} |{off}",
                flush=True,
            )
            model.train()
        if step == a.steps:
            break
        i = np.sort(rng.choice(still, a.batch))
        b = inputs(tr, i, ids[0], text, norm, cams, use_state)
        b["images"] = augment(b["images"], a.shift)
        y = target[i]
        if a.mirror:  # the front camera sits near the x-z plane: a left-right flip is the world's y -> -y
            flip = torch.from_numpy(rng.random(len(i)) < 0.5)
            b["images"] = torch.where(flip[:, None, None, None, None], b["images"].flip(3), b["images"])
            y = y.clone()
            y[flip, 1] = (-(y[flip, 1] * std[1] + mean[1]) - mean[1]) / std[1]
        _, _, aux = model.encode(b)
        loss = ((aux - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"object position std in training [cm]: x {100 * std[0]:.1f}, y {100 * std[1]:.1f} (predicting the mean)")
    if a.relative:
        print(f"validation: {len(firsts)} frames with the hand within {100 * a.relative:.0f} cm (not first frames)")


if __name__ == "__main__":
    main()
