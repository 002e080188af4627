"""Worker processes within the machine's bounds, and never outliving the run that started them."""

from __future__ import annotations

import dataclasses
import math
import os
import sys

WORKER_BASE = 300 << 20  # [bytes] a worker's resident memory before it holds a shard (measured ~160 MB, state only)
FRAMES_PER_EPISODE = 120  # episodes run ~80-150 frames at 20 Hz
_parent = os.getpid()


def _remember_parent() -> None:
    global _parent
    _parent = os.getpid()


os.register_at_fork(before=_remember_parent)


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """[bytes] MemAvailable of /proc/meminfo, None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def worker_bytes(s) -> int:
    """[bytes] a worker is expected to hold: its base plus one shard's frames (rendered images kept until the
    shard's videos are written)."""
    h, w = s.resolution
    return WORKER_BASE + s.shard * FRAMES_PER_EPISODE * h * w * 3 * len(s.cameras)


def bound_workers(s, missing: int, rate: float):
    """`s` with `workers` no more than the cores, the memory, and the shards the `missing` episodes need at
    success `rate` (more workers than shards would only be forked to wait). A cap below what was asked for
    because of cores or memory is said in one line on stderr."""
    if getattr(s, "executor", "local") != "local":  # Ray places its tasks by the cluster's own resources
        return s
    workers, why = s.workers, []
    if workers > (c := cores()):
        workers = c
        why = [] if s.raw.get("workers") == "auto" else [f"the {c} cores of this machine"]
    mem = available_memory()
    if mem is not None and workers > (fit := max(1, mem // worker_bytes(s))):
        workers, why = (
            fit,
            [f"what {mem / 2**30:.1f} GiB of free memory holds (~{worker_bytes(s) / 2**20:.0f} MB each)"],
        )
    if why:
        print(f"warning: workers={s.workers} is more than {why[0]}; using workers={workers}", file=sys.stderr)
    shards = max(1, math.ceil(missing / (s.shard * max(rate, 0.05))))
    workers = min(workers, shards)
    return s if workers == s.workers else dataclasses.replace(s, workers=workers)


def die_with_parent() -> None:
    """In a forked worker: ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), and
    exit if it is already gone. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != _parent:  # the parent died before the call: no signal will come
        os._exit(1)
