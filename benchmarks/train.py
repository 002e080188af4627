"""Training throughput of the bundled VLA against its data loader, measured in the same run.

    python benchmarks/train.py                      # model=tiny, 96x96, cameras front+wrist, batch 64
    python benchmarks/train.py --data data/pp       # on an existing rendered dataset

The loader figure is batches drawn and made into model inputs (memmap gather, normalization, chunking,
augmentation) with no model; the trainer figure is full optimizer steps including that loader. The loader
must not be the bottleneck: its samples/s should be >= 5x the trainer's. Medians of --repeats timings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from synth.vla.batches import Normalizer, Sampler
from synth.vla.data import load
from synth.vla.model import VLA, build, count_parameters
from synth.vla.train import TextTable, norm_stats, prompt_table, to_device


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="", help="a rendered dataset (default: generate 40 episodes)")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="timed optimizer steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--amp", action="store_true", help="also time the trainer under bf16 autocast (amp=on)")
    ap.add_argument("--text", default="hashed", help="hashed | minilm (the per-step cost is the same: cached)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-train-"))
    data = Path(args.data) if args.data else tmp / "pp"
    if not args.data:
        cmd = [
            sys.executable,
            "-m",
            "synth.cli",
            "generate",
            f"out={data}",
            "n=40",
            "cameras=[front,wrist]",
            "progress=false",
            "seed=1",
        ]
        print("generating 40 rendered episodes ...", flush=True)
        subprocess.run(cmd, check=True)
    cams = ("front", "wrist")
    src = load(data, cams, args.resolution, tmp / "cache")
    stats = norm_stats([src])
    prompts, ids = prompt_table([src], 16)
    cfg = build(args.model, cameras=cams, resolution=args.resolution, text=args.text)
    model = VLA(cfg)
    text = TextTable(args.text, prompts, model)
    sampler = Sampler([src], [1.0], ids, Normalizer(stats), cfg.horizon, cfg.action_dim, cfg.state_dim, cams, 0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loader_rate() -> float:
        n = max(20, 2 * args.steps)
        t = time.perf_counter()
        for _ in range(n):
            to_device(sampler.batch(args.batch), text, torch.device("cpu"), 4)
        return n * args.batch / (time.perf_counter() - t)

    def trainer_rate(amp: bool = False) -> float:
        t = time.perf_counter()
        for _ in range(args.steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = model(to_device(sampler.batch(args.batch), text, torch.device("cpu"), 4))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return args.steps * args.batch / (time.perf_counter() - t)

    trainer_rate()  # warm-up (allocator, kernels)
    trainer_rate(args.amp)
    loads, trains, ambs = [], [], []
    for r in range(args.repeats):
        loads.append(loader_rate())
        trains.append(trainer_rate())
        msg = f"  run {r}: loader {loads[-1]:.0f} samples/s, trainer {trains[-1]:.1f} samples/s"
        if args.amp:
            ambs.append(trainer_rate(True))
            msg += f", trainer with bf16 autocast {ambs[-1]:.1f} samples/s"
        print(msg, flush=True)
    lo, tr = float(np.median(loads)), float(np.median(trains))
    print(
        f"\nmodel={args.model} ({count_parameters(model) / 1e6:.2f}M parameters), {args.resolution}x{args.resolution}, "
        f"cameras {'+'.join(cams)}, batch {args.batch}, {torch.get_num_threads()} threads, {src.frames} frames"
    )
    print("| loader samples/s | trainer samples/s | trainer steps/s | loader/trainer |")
    print("|---|---|---|---|")
    print(f"| {lo:.0f} | {tr:.1f} | {tr / args.batch:.2f} | {lo / tr:.1f} |")
    if args.amp:
        am = float(np.median(ambs))
        print(f"\nbf16 autocast (`synth train amp=on`): {am:.1f} samples/s, {am / tr:.2f}x the float32 trainer")


if __name__ == "__main__":
    main()
