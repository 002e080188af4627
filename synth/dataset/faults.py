"""A test-only hook: `SYNTH_FAULT=<step>[@<commit>]` kills this process (SIGKILL) at a named step of the store.

The fault-injection tests (tests/test_store_faults.py) use it to stop a run at each step of the commit
protocol, as a power cut or the OOM killer would. Unset (always, outside those tests) it does nothing.
Steps, in commit order: `staged` (a shard is staged, nothing of it committed), `renamed-<kind>` after the
commit's file of that kind (data, episodes, attempts, video) is renamed into place, `meta-tasks`,
`meta-info`, `meta-stats` after each rewritten meta file, `manifest` after the manifest line,
`progress` after progress.json (the commit point), `cleanup` halfway through deleting the staged shard.
`<commit>` picks the commit (0-based, counted over the dataset's life); default: the first to reach it.
One step is a worker's, not the committer's: `worker@<k>` kills the worker process (local or Ray) each time it
starts shard k, as a shard that crashes its worker every time would. `stall@<k>` stops (SIGSTOP) the first
worker to start shard k, so that a test kills a worker from outside while it certainly holds a shard.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

STEPS = (
    "staged",
    "renamed-data",
    "renamed-video",
    "renamed-episodes",
    "renamed-attempts",
    "meta-tasks",
    "meta-info",
    "meta-stats",
    "manifest",
    "progress",
    "cleanup",
)
WORKER = "worker"  # counted by shard, not by commit
STALL = "stall"  # counted by shard; once per dataset


def fault(step: str, at: int) -> None:
    """SIGKILL this process if SYNTH_FAULT names `step` (at commit, or shard, `at`; or at any)."""
    want = os.environ.get("SYNTH_FAULT")
    if not want:
        return
    name, _, where = want.partition("@")
    if name == step and (not where or int(where) == at):
        os.kill(os.getpid(), signal.SIGKILL)


def stall(at: int, marker: Path) -> None:
    """SIGSTOP this process if SYNTH_FAULT is `stall@<at>` and `marker` (the run's own file) did not exist yet."""
    if os.environ.get("SYNTH_FAULT") != f"{STALL}@{at}":
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch(exist_ok=False)
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGSTOP)
