"""`synth generate`: shards of attempts run in worker processes; the main process commits them in order.

Attempt i depends only on (seed, i). Shard k holds attempts [k*shard, (k+1)*shard). Workers stage whole
shards; the main process commits staged shards in shard order, so the dataset holds the first n
successful attempts whatever the worker count, and a rerun of the same command resumes.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from synth import parts, procs, provenance
from synth.backends.base import make
from synth.config import Settings
from synth.dataset import lock
from synth.dataset.faults import WORKER, fault, stall
from synth.dataset.lock import foreign
from synth.dataset.staging import clean_partial, shard_dir, write_shard
from synth.dataset.writer import Store
from synth.embodiment import load
from synth.errors import ConfigError, Stopped
from synth.executors import RayPool, land, staged
from synth.kinematic_line import worker_class
from synth.kinematic_mode import KinematicWorker
from synth.pipeline import Worker
from synth.tabletop import objects
from synth.types import EpisodeBatch

_worker: Worker | KinematicWorker | None = None
_settings: Settings | None = None


def make_worker(s: Settings) -> Worker | KinematicWorker:
    if s.mode == "kinematic":
        return worker_class(s.task)(
            s.task,
            list(s.randomizers),
            load(s.embodiment),
            s.seed,
            s.control_hz,
            held_out=s.held_out,
            action=s.action,
        )
    return Worker(
        s.task,
        list(s.randomizers),
        load(s.embodiment),
        s.seed,
        s.control_hz,
        s.cameras,
        s.resolution,
        held_out=s.held_out,
        batch=s.batch,
        backend=make(s.backend),
        action=s.action,
        counterfactuals=s.counterfactuals,
        physics=s.physics,
        focus=s.focus,
        uniform=s.backend == "mujoco_warp",  # one model layout for every draw: MuJoCo Warp batches them together
        planner=s.planner,
    )


def _init(s: Settings) -> None:
    global _worker, _settings
    # kinematic workers allocate arrays of a few MB per batch: from the heap, not a fresh mmap (page faults) each
    _fixed_mmap_threshold(64 << 20 if s.mode == "kinematic" else 1 << 20)
    _settings, _worker = s, make_worker(s)
    gc.freeze()  # modules and the worker live as long as the process: the collector's full passes skip them


def _init_forked(s: Settings) -> None:
    """A local pool's worker: dies with the run that forked it (a Ray worker belongs to Ray), then `_init`."""
    procs.die_with_parent()
    _init(s)


def ray_shard(s: Settings, k: int, need: int | None) -> dict:
    """A Ray task: shard k in this Ray worker process (its pipeline built once per config)."""
    if _settings is None or _settings.raw != s.raw:
        _init(s)
    return staged(run_shard, s, k, need)


def _fixed_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """glibc raises its mmap threshold after large arrays are freed, so later ones come from a heap
    that fragments and grows; a fixed threshold keeps a long run's memory flat."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def run_shard(k: int, need: int | None = None, root: Path | None = None) -> dict:
    """Worker side: run the attempts of shard k and stage them (under `root`, default `out`). Returns counts
    for the progress bar.

    With `need` (the dataset's last shards), the shard stops once it holds that many episodes: a
    truncated shard, which the store commits as partial, so a later, larger n redoes it whole.
    """
    assert _worker is not None and _settings is not None
    fault(WORKER, k)
    s = _settings
    stall(k, Path(s.out) / ".synth" / f"stalled-{k}")
    indices = list(s.attempts_of(k))
    episodes: list | EpisodeBatch
    if isinstance(_worker, KinematicWorker):
        episodes, attempts = _worker.block_batch(indices, need)
    else:
        episodes, attempts = _worker.block(indices, need)
    video = None
    if s.cameras:
        from synth.dataset.video import VideoWriter

        video = VideoWriter
    rec = {provenance.FILE: provenance.describe(s.attempts_of(k), s.executor)}
    write_shard(root or Path(s.out), k, episodes, attempts, video, s.control_hz, s.codec, extra=rec)
    return {"shard": k, "episodes": len(episodes), "attempts": len(attempts)}


def generate(s: Settings) -> dict:
    """Write (or finish) the dataset of `s` holding the lock on `out` (one writer at a time); returns the
    store's summary."""
    if not Path(s.out, ".synth", "config.json").exists() and foreign(Path(s.out)) and not s.overwrite:
        if lock.busy(s.out) is None:  # a run that is starting on it has not written its config yet: acquire says so
            Store.open(Path(s.out), s)  # refuses a directory that is not a dataset before writing a lock into it
    lock.acquire(s.out)
    try:
        return _generate(s)
    finally:
        lock.release(s.out)


def _generate(s: Settings) -> dict:
    s = parts.target(adopt_shard(s))
    store = Store.open(Path(s.out), s)
    clean_partial(store.root)
    if store.episodes >= s.n:
        print(f"{s.out}: already has {store.episodes} episodes (n={s.n}); nothing to do", file=sys.stderr)
        return store.summary()
    s = procs.bound_workers(s, s.n - store.episodes, store.success_rate())
    # before the progress bar: no thread of ours exists when the workers are forked
    pool = RayPool(s, ray_shard) if s.executor == "ray" else _pool(s)
    bar = tqdm(total=s.n, initial=store.episodes, unit="ep", disable=not s.progress, dynamic_ncols=True)
    t0, start_eps = time.time(), store.episodes
    # shards finished and not yet committed -> their (episodes, attempts), None when found on disk
    staged: dict[int, tuple[int, int] | None] = _staged_on_disk(store)
    nxt = store.next_shard
    inflight: dict[Future, tuple[int, int | None]] = {}  # -> (shard, episodes it stops at or None)
    deaths: dict[int, int] = {}

    def skip(j: int) -> int:
        """Episodes of shard j already in the dataset (a shard committed in part)."""
        return store.p["skip"] if j == store.next_shard else 0

    try:
        while store.episodes < s.n:
            known = [c for c in staged.values() if c is not None]
            seen = store.attempts + sum(a for _, a in known)
            rate = (store.p["successes"] + sum(e for e, _ in known)) / seen if seen else 0.9
            full = s.shard * rate  # expected episodes of a whole shard

            # episodes each shard staged or running is expected to add to the dataset
            coming = {j: (c[0] if c else full) - skip(j) for j, c in staged.items()}
            coming.update({j: (full if need is None else min(need, full)) - skip(j) for j, need in inflight.values()})
            while len(inflight) < 2 * (pool.slots if isinstance(pool, RayPool) else s.workers):
                if nxt not in coming:
                    missing = s.n - store.episodes - sum(c for j, c in coming.items() if j < nxt)
                    if missing <= 0:
                        break
                    need = _need(missing, full, skip(nxt))
                    try:
                        inflight[pool.submit(run_shard, nxt, need)] = (nxt, need)
                    except BrokenProcessPool:  # a worker died since the last wait: new workers take every shard
                        _died(deaths, {j for j, _ in inflight.values()}, store.episodes)
                        pool, inflight = _restart(pool, s, inflight, nxt, need, seen=False)
                    coming[nxt] = (full if need is None else min(need, full)) - skip(nxt)
                nxt += 1
            if inflight:
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for f in finished:
                    k, need = inflight.pop(f)
                    try:
                        r = land(f.result(), store.root)
                        staged[k] = (r["episodes"], r["attempts"])
                        deaths.pop(k, None)
                    except BrokenProcessPool:
                        _died(deaths, {k, *(j for j, _ in inflight.values())}, store.episodes)
                        pool, inflight = _restart(pool, s, inflight, k, need)
                        break
                    except Exception as e:  # Ray gave up on the shard: one line, unless synth's own code failed
                        stop = pool.gave_up(k, e, store.episodes) if isinstance(pool, RayPool) else None
                        if stop is None:
                            raise
                        raise stop from None
            while store.next_shard in staged and store.episodes < s.n:
                k = store.next_shard
                del staged[k]
                added = _commit(store, s, k)
                if store.next_shard == k and store.episodes < s.n:
                    nxt = min(nxt, k)  # a truncated shard fell short of the estimate: run it again, further
                _show(bar, added, store, pool, store.episodes - start_eps, time.time() - t0)
            if store.attempts >= 2000 and store.success_rate() == 0:
                raise Stopped("no attempt succeeded in 2000 tries; run `synth inspect` to see why")
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
    for k in staged:  # finished: shards staged beyond n are not needed (a larger n redoes them exactly)
        shutil.rmtree(shard_dir(store.root, k), ignore_errors=True)
    return _report(store, s.out, start_eps, time.time() - t0)


def _staged_on_disk(store: Store) -> dict[int, tuple[int, int] | None]:
    """Shards a killed run staged and did not commit (from the next one on): shard -> None (counts unknown)."""
    staging = store.root / ".synth" / "staging"
    on_disk = (
        [int(p.name[6:]) for p in staging.glob("shard-[0-9]*") if p.name[6:].isdigit()] if staging.exists() else []
    )
    return {k: None for k in on_disk if k >= store.next_shard}


def _commit(store: Store, s: Settings, k: int) -> int:
    """Record staged shard k's provenance and commit its episodes up to n; returns the episodes added."""
    provenance.record(store.root, s.attempts_of(k)[0] // s.shard, shard_dir(store.root, k))
    return store.commit(k, shard_dir(store.root, k), s.n - store.episodes)


def _show(bar: tqdm, added: int, store: Store, pool, made: int, seconds: float) -> None:
    """Progress after a commit of `added` episodes: episodes/s of this run (`made` in `seconds`), the success rate
    and the pool's state."""
    bar.update(added)
    dt = max(seconds, 1e-9)
    bar.set_postfix(
        ok_per_s=f"{made / dt:.1f}",
        success=f"{store.success_rate():.0%}",
        **(pool.postfix() if isinstance(pool, RayPool) else {}),
    )


def _report(store: Store, out: str, start_eps: int, dt: float) -> dict:
    """Print what this run wrote, at what rate; returns the store's summary."""
    summ = store.summary()
    made = summ["episodes"] - start_eps
    print(
        f"wrote {made} episodes ({summ['episodes']} in all, {summ['frames']} frames) to {out} in {dt:.1f}s: "
        f"{made / max(dt, 1e-9):.2f} successful trajectories/s, success rate {summ['success_rate']:.1%}",
        file=sys.stderr,
    )
    return summ


def adopt_shard(s: Settings) -> Settings:
    """With shard=auto, continue an existing dataset with the shard size it was made with."""
    cfg = Path(s.out) / ".synth" / "config.json"
    if not s.shard_auto or not cfg.exists():
        return s
    old = json.loads(cfg.read_text()).get("shard", s.shard)
    return dataclasses.replace(s, shard=old, raw={**s.raw, "shard": old})


def _pool(s: Settings) -> ProcessPoolExecutor:
    """Worker processes: forked on Linux (everything is imported already, so they start at once),
    spawned elsewhere."""
    os.environ.setdefault("LP_NUM_THREADS", "0")  # llvmpipe draws in the calling thread: the workers fill the cores
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    tqdm.monitor_interval = 0  # no monitor thread in a process that forks
    if s.mode != "kinematic" and method == "fork":  # physics builds mesh hulls: import trimesh once, not per worker
        objects._trimesh()
    if method == "fork" and (s.mode == "kinematic" or s.planner == "batched"):  # compiled kernels: loaded once
        from synth.batch_planner.planner import Planner

        Planner(s.task, load(s.embodiment), s.control_hz).warm()
    pool = ProcessPoolExecutor(s.workers, mp_context=mp.get_context(method), initializer=_init_forked, initargs=(s,))
    return pool


def _need(missing: float, full: float, skip: int) -> int | None:
    """Episodes a shard may stop at when the dataset lacks only `missing` (expected) beyond it: None
    (run it whole) unless that is clearly less than a whole shard's `full`. A 10% margin plus two makes
    falling short (and running the shard again) rare; `skip` counts its episodes committed already."""
    if missing > 0.8 * full:
        return None
    return skip + math.ceil(1.1 * missing) + 2


def _died(deaths: dict[int, int], shards: set[int], committed: int) -> None:
    """A worker died with `shards` in flight (the pool cannot say which ran in it): count the death for each
    (`deaths`: shard -> deaths it was in flight for); at a third, stop with one line naming the suspects."""
    for j in shards:
        deaths[j] = deaths.get(j, 0) + 1
    most = max(deaths.values(), default=0)
    if most < 3:
        return
    held = sorted(j for j, d in deaths.items() if d == most)
    who = f"shard {held[0]}" if len(held) == 1 else f"one of shards {', '.join(map(str, held))} (in flight each time)"
    raise Stopped(
        f"{who} killed its worker 3 times; {committed} episodes are committed: rerun the same command to resume"
    )


def _restart(
    pool: ProcessPoolExecutor | RayPool, s: Settings, inflight: dict, k: int, need: int | None, seen: bool = True
):
    """A worker died (killed, out of memory): start a new pool and resubmit every unfinished shard and shard k
    (one whose future saw the pool break, or, `seen` False, the one being submitted when it broke)."""
    shards = dict(sorted({**dict(inflight.values()), k: need}.items()))
    held = [j for j in shards if seen or j != k]
    where = f" with shards {', '.join(map(str, held))} in flight" if held else ""
    print(f"a worker process died{where}; restarting the workers", file=sys.stderr)
    pool.shutdown(wait=False, cancel_futures=True)
    new = _pool(s)
    return new, {new.submit(run_shard, j, nd): (j, nd) for j, nd in shards.items()}


def check_out(out: str) -> None:
    """Refuse an unwritable output directory before any work is done."""
    p = Path(out)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".synth-write-test-{os.getpid()}"  # per process: two runs may probe at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"cannot write to out={out} ({e.strerror}); choose a writable directory with out=<dir>"
        ) from None
