"""executor=ray: shards run as Ray tasks on this machine or a cluster; the head commits them as it does locally.

`RayPool` looks like the process pool `synth.generate` uses (`submit` returns a concurrent Future), so the
generate loop, its bound on shards in flight, its commit order and its resume are the same for both. Ray
runs a task again when its worker or node dies (`max_retries`). With transfer=object a worker stages its
shard in a temporary directory of its own machine and returns the files' bytes through Ray's object store,
and the head writes them into its staging directory (`land`); with transfer=path the worker writes into `out`
itself, which every node must then see.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from synth.dataset.durable import fsync
from synth.dataset.staging import shard_dir
from synth.errors import ConfigError, Stopped

if TYPE_CHECKING:  # annotations only: the settings are built above this module
    from synth.config import Settings

RETRIES = 5  # system failures (a worker or node lost) per shard before the run stops


def check_address(s: Settings) -> None:
    """executor=ray with a cluster (address= or RAY_ADDRESS) that does not answer: one line, before anything is
    written (Ray itself waits minutes for it, printing warnings)."""
    address = s.address or os.environ.get("RAY_ADDRESS", "")
    if s.executor != "ray" or address in ("", "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise ConfigError(
            f"cannot reach the Ray cluster at address={address} ({why}); give the head's <ip>:<port> "
            "(`ray status` on the head shows it), or address=auto on a machine of the cluster"
        ) from None


class RayPool:
    """Shards as Ray tasks. Joins `s.address` or RAY_ADDRESS, or an already connected Ray, else starts a
    local Ray of `s.workers` CPUs (and stops it at shutdown)."""

    def __init__(self, s: Settings, work):
        import ray

        self.ray, self.started = ray, False
        address = s.address or os.environ.get("RAY_ADDRESS", "")
        env_vars = {"LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS", "0")}
        if "OPENBLAS_CORETYPE" in os.environ:  # one BLAS kernel set on every node: the same last bits everywhere
            env_vars["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
        if "SYNTH_FAULT" in os.environ:  # the fault-injection tests' hook (synth.dataset.faults) reaches the workers
            env_vars["SYNTH_FAULT"] = os.environ["SYNTH_FAULT"]
        env = {"env_vars": env_vars}  # per task as well: it holds when joining a Ray this process is connected to
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
                else:
                    ray.init(
                        address="local",  # a new Ray, even where one runs on this machine (address=auto joins it)
                        num_cpus=s.workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                    self.started = True
            except ConnectionError as e:
                raise ConfigError(
                    f"cannot join the Ray cluster at address={address} ({e}); check `ray status`"
                ) from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.slots = max(cpus, 1)  # shards running at once; the loop keeps twice that in flight
        self.s_ref = ray.put(s)
        self.task = ray.remote(num_cpus=1, max_retries=RETRIES, runtime_env=env)(work)  # work(s, k, need) -> dict
        self.transfer = s.transfer
        self.refs: dict[Future, object] = {}
        self._nodes, self._nodes_at = 0, 0.0

    def submit(self, fn, k: int, need: int | None) -> Future:
        """Run shard k (`fn`, the local pool's shard function, is what `work` calls on the worker)."""
        del fn
        self.refs = {f: r for f, r in self.refs.items() if not f.done()}
        ref = self.task.remote(self.s_ref, k, need)
        fut = ref.future()
        self.refs[fut] = ref
        return fut

    def nodes(self) -> int:
        """Nodes alive (asked of Ray at most every 5 s)."""
        if time.time() - self._nodes_at > 5:
            self._nodes = sum(1 for n in self.ray.nodes() if n.get("Alive"))
            self._nodes_at = time.time()
        return self._nodes

    def postfix(self) -> dict:
        return {"nodes": self.nodes()}

    def gave_up(self, k: int, e: BaseException, committed: int) -> ConfigError | None:
        """The one-line error for shard k's task, which ended in `e` after Ray's retries (`committed` episodes
        are in the dataset); None for an error of synth's own code, whose traceback is the report."""
        ex = self.ray.exceptions
        if isinstance(e, ex.RayTaskError):
            cause = getattr(e, "cause", None)
            return ConfigError(str(cause)) if isinstance(cause, ConfigError) else None
        if isinstance(e, ex.OutOfMemoryError):
            why = "ran its worker out of memory (give the nodes more memory or fewer CPUs to Ray)"
        elif isinstance(e, ex.WorkerCrashedError):
            why = f"killed its Ray worker {RETRIES + 1} times"
        elif isinstance(e, (ex.NodeDiedError, ex.LocalRayletDiedError, ex.ObjectLostError, ex.RaySystemError)):
            why = f"was lost with its node or the cluster ({type(e).__name__}; check `ray status`)"
        elif isinstance(e, ex.RayError):
            why = f"failed in Ray ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        else:
            return None
        return Stopped(f"shard {k} {why}; {committed} episodes are committed: rerun the same command to resume")

    def shutdown(self, wait: bool = True, cancel_futures: bool = True) -> None:
        del wait
        if cancel_futures:
            for f, ref in self.refs.items():
                if not f.done():
                    self.ray.cancel(ref, force=True)
        self.refs = {}
        if self.started:
            self.ray.shutdown()


def staged(run, s: Settings, k: int, need: int | None) -> dict:
    """Worker side: `run(k, need, root=...)` stages shard k; with transfer=object in a temporary directory of this
    machine, whose files return with the counts (through Ray's object store), else in `out` itself."""
    if s.transfer == "path":
        return run(k, need)
    tmp = Path(tempfile.mkdtemp(prefix=f"synth-shard-{k}-"))
    try:
        r = run(k, need, root=tmp)
        r["files"] = {p.name: p.read_bytes() for p in sorted(shard_dir(tmp, k).iterdir())}
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def land(r: dict, root: Path) -> dict:
    """Head side: write a shard returned with its files (transfer=object) into the staging directory of `root`,
    flushed and renamed into place as a worker stages it; check that a shard staged in place (transfer=path)
    is there. Returns the counts without the files."""
    k = r["shard"]
    final = shard_dir(root, k)
    files = r.pop("files", None)
    if files is None:
        if not final.is_dir():
            raise ConfigError(
                f"shard {k} was staged by a worker that does not see out={root} (transfer=path needs a file "
                "system shared by every node); use transfer=object"
            )
        return r
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        fsync(tmp / name)
    fsync(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync(final.parent)
    return r
