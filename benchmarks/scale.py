"""Scaling out: executor=ray against local on the same cores, the head's commit ceiling, the merge's rate, and
what n=1e6 would take on 10, 100 and 1,000 two-core nodes; one table, every ratio measured in this run.

    python benchmarks/scale.py                      # n=500 per run, each executor twice, alternating
    python benchmarks/scale.py --n 2000 --repeats 1 # the issue's n on a quiet machine

Throughput: `synth generate` runs (state only, physics) with workers=2: local, ray (transfer=object), ray
(transfer=path), alternating, the same seed; the rate is the run's own "successful trajectories/s" (after Ray has
started; its start is reported apart), ratios are medians of the per-round ratios to that round's local run.
Cameras: the same with cameras=[front,wrist] at a small n.
Ceiling: real physics shards staged once (state only; and 2 cameras at 128x128), copied into many shards with
their attempt numbers moved on, then committed by one head as fast as it goes: `Store.commit` alone (local,
transfer=path) and landing the shard's bytes first (transfer=object). Merge: the same shards committed as the
2 parts of a part=i/2 run, then `synth merge`d.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from synth import generate as g
from synth import provenance
from synth.config import compose_config, settings
from synth.dataset.staging import _read, _write, shard_dir
from synth.dataset.writer import Store
from synth.executors import land
from synth.merge import merge

RUN = ["synth.cli", "generate", "progress=false", "seed=11", "workers=2"]


def run(out: Path, *keys: str) -> tuple[float, float, int]:
    """(successful trajectories/s as the run reports it, wall seconds, episodes) of one generate run."""
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", *RUN, f"out={out}", *keys], capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    m = re.search(r"wrote (\d+) episodes .* ([\d.]+) successful trajectories/s", r.stderr)
    assert m, r.stderr[-2000:]
    shutil.rmtree(out, ignore_errors=True)
    return float(m.group(2)), wall, int(m.group(1))


def throughput(tmp: Path, n: int, repeats: int, keys: tuple[str, ...] = ()) -> dict:
    """Per executor: rates and walls of each round, and the median ratio to the round's local rate."""
    kinds = {
        "local": [],
        "ray object": ["executor=ray", "transfer=object"],
        "ray path": ["executor=ray", "transfer=path"],
    }
    res: dict = {k: {"rate": [], "wall": []} for k in kinds}
    for _ in range(repeats):
        for name, extra in kinds.items():
            rate, wall, _ = run(tmp / "t", f"n={n}", *keys, *extra)
            res[name]["rate"].append(rate)
            res[name]["wall"].append(wall)
            print(f"  {name:10s} n={n} {' '.join(keys)}: {rate:.2f} traj/s, wall {wall:.0f}s", file=sys.stderr)
    for name in kinds:
        res[name]["ratio"] = statistics.median(
            r / loc for r, loc in zip(res[name]["rate"], res["local"]["rate"], strict=True)
        )
    return res


def stage(root: Path, keys: list[str], shards: int) -> tuple:
    """Stage `shards` real shards under root (in this process, one worker); returns their settings."""
    s = settings(compose_config([f"out={root}", "seed=11", "progress=false", *keys]))
    g._init(s)
    for k in range(shards):
        g.run_shard(k)
    return s


def copy_shard(a: Path, b: Path, move: int) -> None:
    """Staged shard directory a copied to b, its attempt numbers moved on by `move`."""
    b.mkdir(parents=True)
    for f in a.iterdir():
        if f.name in ("episodes.arrow", "attempts.arrow"):
            t = _read(f)
            i = t.column_names.index("attempt")
            _write(t.set_column(i, "attempt", pa.array(t["attempt"].to_numpy() + move)), b / f.name)
        else:
            shutil.copyfile(f, b / f.name)


def ceiling(tmp: Path, keys: list[str], base: int, count: int) -> dict:
    """Episodes/s and MB/s of one head committing `count` pre-staged shards (copies of `base` real ones):
    commit alone (transfer=path, local), and landing the shard's bytes first (transfer=object)."""
    src = tmp / "src"
    s = stage(src, keys, base)
    out: dict = {"src": src, "settings": s}
    for mode in ("path", "object"):
        root = tmp / f"head-{mode}"
        store = Store.open(root, dataclasses.replace(s, out=str(root), n=10**9))
        for k in range(count):
            copy_shard(shard_dir(src, k % base), shard_dir(root, k), (k - k % base) * s.shard)
        nbytes = sum(f.stat().st_size for f in (root / ".synth" / "staging").rglob("*") if f.is_file())
        parcels = []
        if mode == "object":  # the bytes a worker returns, in the head's memory before the clock starts
            for k in range(count):
                d = shard_dir(root, k)
                parcels.append({"shard": k, "files": {f.name: f.read_bytes() for f in d.iterdir()}})
                shutil.rmtree(d)
        t0 = time.perf_counter()
        for k in range(count):
            if mode == "object":
                land(parcels[k], root)
            provenance.record(root, k, shard_dir(root, k))
            store.commit(k, shard_dir(root, k), 10**9)
        dt = time.perf_counter() - t0
        out[mode] = {"eps": store.episodes / dt, "mbs": nbytes / 1e6 / dt, "episodes": store.episodes, "s": dt}
        print(f"  commit ({mode}) {keys}: {out[mode]['eps']:.0f} ep/s, {out[mode]['mbs']:.1f} MB/s", file=sys.stderr)
        shutil.rmtree(root)
    return out


def merge_rate(tmp: Path, src: Path, s, base: int, count: int) -> dict:
    """The same kind of shards committed as the 2 parts of a part=i/2 run, then merged: episodes/s and MB/s."""
    total = 0
    for i in range(2):
        root = tmp / f"part{i}"
        store = Store.open(root, dataclasses.replace(s, out=str(root), n=10**9, part=(i, 2)))
        for j in range(count // 2):
            gk = 2 * j + i  # the whole run's shard
            copy_shard(shard_dir(src, gk % base), shard_dir(root, j), (gk - gk % base) * s.shard)
            store.commit(j, shard_dir(root, j), 10**9)
        total += store.episodes
    nbytes = sum(f.stat().st_size for i in range(2) for f in (tmp / f"part{i}").rglob("*") if f.is_file())
    t0 = time.perf_counter()
    summ = merge(str(tmp / "merged"), f"[{tmp / 'part0'},{tmp / 'part1'}]", n=total)
    dt = time.perf_counter() - t0
    for d in ("part0", "part1", "merged"):
        shutil.rmtree(tmp / d)
    return {"eps": summ["episodes"] / dt, "mbs": nbytes / 2 / 1e6 / dt, "episodes": summ["episodes"]}


def hours(n: float, rate: float) -> str:
    h = n / rate / 3600
    return f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="episodes per throughput run (state only)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of local / ray object / ray path")
    ap.add_argument("--camera-n", type=int, default=12, help="episodes per 2-camera run (0: skip)")
    ap.add_argument("--shards", type=int, default=200, help="shards the head commits in the ceiling runs")
    ap.add_argument("--shard", type=int, default=64, help="attempts per shard in the ceiling runs (state only)")
    ap.add_argument("--only", choices=("all", "throughput", "store"), default="all", help="store: ceiling and merge")
    ap.add_argument("--node-rate", type=float, default=0.0, help="with --only store: a 2-core node's traj/s")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="synth-scale-"))
    lines = ["| measure | value | ratio |", "|---|---|---|"]
    node, cam_node = args.node_rate, 0.0
    try:
        if args.only in ("all", "throughput"):
            thr = throughput(tmp, args.n, args.repeats)
            node = statistics.median(thr["local"]["rate"])  # successful trajectories/s of one 2-core node
            lines += _rows(thr, f"state only, n={args.n}")
            if args.camera_n:
                cam = throughput(tmp, args.camera_n, 1, ("cameras=[front,wrist]",))
                cam_node = cam["local"]["rate"][0]
                lines += _rows(cam, f"2 cameras 128², n={args.camera_n}")
        if args.only in ("all", "store"):
            state = ceiling(tmp / "c0", [f"shard={args.shard}"], 1, args.shards)
            video = ceiling(tmp / "c1", ["shard=8", "cameras=[front,wrist]"], 1, args.shards)
            mrg = merge_rate(tmp / "m", state["src"], state["settings"], 1, args.shards)
            lines += _store_rows(state, video, mrg, node, cam_node, args.shard)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))


def _rows(res: dict, label: str) -> list[str]:
    out = []
    for name, r in res.items():
        rates = ", ".join(f"{x:.2f}" for x in r["rate"])
        walls = ", ".join(f"{x:.0f}" for x in r["wall"])
        out.append(f"| {name}, {label}, workers=2: traj/s per round (wall s) | {rates} ({walls}) | {r['ratio']:.2f} |")
    return out


def _store_rows(state: dict, video: dict, mrg: dict, node: float, cam_node: float, shard: int) -> list[str]:
    out = []
    for label, c, rate in ((f"state only, shard={shard}", state, node), ("2 cameras 128², shard=8", video, cam_node)):
        for mode in ("path", "object"):
            m = c[mode]
            fed = f"feeds {m['eps'] / rate:.0f} nodes" if rate else ""
            out.append(
                f"| head commit ceiling, {label}, transfer={mode} ({m['episodes']} episodes) | "
                f"{m['eps']:.0f} ep/s, {m['mbs']:.1f} MB/s | {fed} |"
            )
    out.append(
        f"| merge of 2 parts, state only ({mrg['episodes']} episodes) | "
        f"{mrg['eps']:.0f} ep/s, {mrg['mbs']:.1f} MB/s | |"
    )
    if node:
        ceil_eps = state["object"]["eps"]
        for nodes in (10, 100, 1000):
            one_head = min(nodes * node, ceil_eps)
            parts = f"{hours(1e6, nodes * node)} + merge {hours(1e6, mrg['eps'])}"
            bound = "head-bound" if nodes * node > ceil_eps else "node-bound"
            out.append(
                f"| n=1e6 state only on {nodes} nodes: one head / part per node + merge | "
                f"{hours(1e6, one_head)} / {parts} | {bound} |"
            )
    return out


if __name__ == "__main__":
    main()
