"""executor=ray on a real Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head without CPUs, a node of 2):
the same dataset as a local run, by either transfer; a killed head resumes; a node lost mid-run loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth import cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray cluster starts (~15 s) and each run starts its worker processes

KEYS = ["progress=false", "seed=5", "shard=2", "batch=2"]  # physics, small shards: several per node
N = 14


def same_dataset(a: Path, b: Path) -> None:
    """Byte-equal data files, episode rows, tasks, info and stats (attempt timings and provenance aside)."""

    def listed(d: Path) -> list[Path]:
        found = (f.relative_to(d) for f in d.rglob("*") if f.is_file())
        return sorted(f for f in found if f.parts[0] in ("data", "meta") and f.parts[1] not in ("synth", "synth.json"))

    files = listed(a)
    assert files and files == listed(b)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    progress = [json.loads((d / ".synth" / "progress.json").read_text()) for d in (a, b)]
    assert progress[0] == progress[1]


def ray_gen(out: Path, *overrides: str) -> list[str]:
    return ["generate", f"out={out}", *KEYS, f"n={N}", "executor=ray", *overrides]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The reference: executor=local, 2 worker processes (made before Ray starts in this process)."""
    out = tmp_path_factory.mktemp("local") / "d"
    assert cli.main(["generate", f"out={out}", *KEYS, f"n={N}", "workers=2"]) == 0
    return out


@pytest.fixture(scope="module")
def cluster(local):
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # every task runs on the worker node
    worker = c.add_node(num_cpus=2)
    c.wait_for_nodes()
    ray.init(address=c.address)
    yield c, worker
    ray.shutdown()
    c.shutdown()


def test_ray_writes_the_same_episodes_as_local(local, cluster, tmp_path):
    out = tmp_path / "d"
    assert cli.main(ray_gen(out, "workers=2")) == 0  # joins the Ray this process is connected to
    same_dataset(local, out)
    runs = [json.loads(p.read_text())["runs"] for p in sorted((out / "meta/synth/provenance").rglob("*.json"))]
    assert len(runs) >= N // 2 and all(r[-1]["executor"] == "ray" and r[-1]["cpu"] and r[-1]["numpy"] for r in runs)


def test_the_heads_blas_kernels_reach_the_workers(cluster, tmp_path, monkeypatch):
    out = tmp_path / "d"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")  # not this host's own choice
    assert cli.main(["generate", f"out={out}", *KEYS, "n=2", "executor=ray"]) == 0
    runs = [json.loads(p.read_text())["runs"] for p in (out / "meta/synth/provenance").rglob("*.json")]
    from synth.provenance import host

    cores = {r[-1]["blas_core"] for r in runs}  # OpenBLAS names its Prescott kernels "Katmai"
    assert runs and len(cores) == 1 and cores != {host()["blas_core"]}, cores


def test_transfer_path_writes_the_same(local, cluster, tmp_path):
    out = tmp_path / "d"
    assert cli.main(ray_gen(out, "transfer=path")) == 0
    same_dataset(local, out)


def _run_until(cmd: list[str], out: Path, episodes: int) -> subprocess.Popen:
    """Start `synth <cmd>` as its own process and return once the dataset holds `episodes` (it still running)."""
    p = subprocess.Popen([sys.executable, "-m", "synth.cli", *cmd], stderr=subprocess.PIPE, start_new_session=True)
    prog = out / ".synth" / "progress.json"
    t0 = time.time()
    while time.time() - t0 < 180 and p.poll() is None:
        if prog.exists() and json.loads(prog.read_text())["episodes"] >= episodes:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run should still be going"
    return p


def test_killed_head_resumes(local, cluster, tmp_path):
    out = tmp_path / "d"
    p = _run_until(ray_gen(out, f"address={cluster[0].address}"), out, 2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert json.loads((out / ".synth" / "progress.json").read_text())["episodes"] < N
    assert cli.main(ray_gen(out)) == 0
    same_dataset(local, out)


def test_a_shard_that_kills_its_worker_every_time_stops_in_one_line_and_resumes(
    local, cluster, tmp_path, monkeypatch, capsys
):
    """Ray gives up on shard 3 (its worker SIGKILLed each time it starts it): exit 2 with one line naming the
    shard and the fix; the shards before it are committed and intact, and the rerun finishes the same dataset."""
    from synth import executors

    monkeypatch.setattr(executors, "RETRIES", 1)  # two tries, not six: the test stays short
    monkeypatch.setenv("SYNTH_FAULT", "worker@3")  # the fault-injection hook, passed to the Ray workers
    out = tmp_path / "d"
    capsys.readouterr()
    assert cli.main(ray_gen(out)) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # (Ray may log its retries above it)
    assert last.startswith("error: shard 3 killed its Ray worker 2 times; ") and err.count("error:") == 1, err
    assert last.endswith("rerun the same command to resume") and "Traceback" not in err
    assert json.loads((out / ".synth" / "progress.json").read_text())["next_shard"] == 3
    assert cli.main(["verify", f"out={out}"]) == 0
    monkeypatch.delenv("SYNTH_FAULT")
    assert cli.main(ray_gen(out)) == 0
    same_dataset(local, out)


def test_a_node_lost_mid_run_loses_nothing(local, cluster, tmp_path):
    """Last in this module: the node running every task is lost mid-run and another joins, so the shards it was
    running (or had finished, their results not yet fetched) are lost and Ray runs them again."""
    c, worker = cluster
    out = tmp_path / "d"
    p = _run_until(ray_gen(out, f"address={c.address}"), out, 2)
    c.remove_node(worker, allow_graceful=False)
    c.add_node(num_cpus=2)  # the lost shards wait for it
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]
    same_dataset(local, out)
    runs = [r for f in (out / "meta/synth/provenance").rglob("*.json") for r in json.loads(f.read_text())["runs"]]
    # the lost node's shards are in (the loss came mid-run); whether the new node ran any depends on how far the
    # lost one had got, so only the dataset's equality above is required of the rest
    assert worker.node_id in {r["ray_node"] for r in runs}, "shards committed from the lost node"


def test_a_run_starts_and_stops_its_own_ray(tmp_path):
    """No address, no RAY_ADDRESS, no Ray connected: the run starts a local Ray of `workers` CPUs and stops it."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", *KEYS, "n=2", "executor=ray", "workers=1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / ".synth" / "progress.json").read_text())["episodes"] == 2
