"""Fault injection on the store: every interruption ends in the dataset an uninterrupted run writes, or in one
line naming the damage; never in a silently wrong dataset.

Kills land at each named step of the commit protocol through the test-only hook `SYNTH_FAULT=<step>@<commit>`
(synth/dataset/faults.py: the committing process SIGKILLs itself there), and at random times from outside.
Power loss is simulated by emptying or halving a staged or committed file; damage to committed files needs
`synth repair` before the rerun. "Identical" is byte for byte for every data, meta/episodes, info, tasks and
stats file, and value for value for the attempt records (their `seconds` are wall-clock timings).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synth import cli
from synth.dataset import lock
from synth.dataset.faults import STEPS

ARGS = ["progress=false", "seed=5", "n=12", "shard=1", "workers=1"]


def gen(out: Path, *extra: str, fault: str | None = None, args: list[str] = ARGS) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTH_FAULT": fault} if fault else None
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", *args, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def main(*argv: str) -> int:
    return cli.main([argv[0], *argv[1:]])


def files(out: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(out)): f.read_bytes()
        for f in sorted((out / "data").rglob("*.parquet")) + sorted((out / "meta").rglob("*"))
        if f.is_file() and f.name != "synth.json" and "attempts" not in f.parts
    }


def attempts(out: Path) -> list[dict]:
    rows = [r for f in sorted((out / "meta/synth/attempts").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same(out: Path, ref: Path) -> None:
    got, want = files(out), files(ref)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == [], "files differ from the uninterrupted run"
    assert attempts(out) == attempts(ref)
    assert main("verify", f"out={out}") == 0


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "d"
    r = gen(out)
    assert r.returncode == 0, r.stderr
    return out


def test_a_kill_at_every_step_of_the_commit_protocol_resumes_exactly(ref, tmp_path):
    """One chain of runs: run i is killed at step i of commit i; the last run finishes the dataset."""
    out = tmp_path / "d"
    for i, step in enumerate(s for s in STEPS if s != "renamed-video"):  # state only: no video to rename
        r = gen(out, fault=f"{step}@{i}")
        assert r.returncode == -signal.SIGKILL, f"{step}: {r.returncode} {r.stderr[-500:]}"
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


def test_kills_at_random_times_resume_exactly(ref, tmp_path):
    """Three runs, each killed (main process and workers, as a machine going down) a random moment after the
    dataset reaches a random size: the 12 shards can take under a second, so a wall-clock guess may miss."""
    out, rng = tmp_path / "d", random.Random(0)
    prog = out / ".synth" / "progress.json"
    for target in sorted(rng.sample(range(1, 9), 3)):
        p = subprocess.Popen(
            [sys.executable, "-m", "synth.cli", "generate", f"out={out}", *ARGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while p.poll() is None and not (prog.exists() and json.loads(prog.read_text())["episodes"] >= target):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        assert p.poll() is None, "the run should still be going"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert json.loads(prog.read_text())["episodes"] < 12
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


def test_the_temporary_files_of_a_killed_write_are_removed(ref, tmp_path):
    """A kill inside an atomic write (before its rename) leaves `.<name>.tmp-<pid>`: the next run removes it."""
    out = tmp_path / "d"
    shutil.copytree(ref, out)
    strays = [out / "meta" / ".stats.json.tmp-99999", out / "meta" / ".info.json.tmp-99998"]
    strays.append(out / ".synth" / ".progress.json.tmp-99997")
    for f in strays:
        f.write_text("{")
    assert main("generate", f"out={out}", *ARGS) == 0
    assert not any(f.exists() for f in strays)
    assert_same(out, ref)


@pytest.mark.parametrize("damage", ["empty frames", "halve episodes", "half deleted"])
def test_a_staged_shard_lost_to_a_power_cut_is_run_again(ref, tmp_path, damage):
    out = tmp_path / "d"
    assert gen(out, fault="staged@1").returncode == -signal.SIGKILL
    shard = out / ".synth/staging/shard-000001"
    if damage == "empty frames":
        (shard / "frames.arrow").write_bytes(b"")
    elif damage == "halve episodes":
        f = shard / "episodes.arrow"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:  # a kill while the shard was being deleted, in the old layout
        (shard / "frames.arrow").unlink()
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


DAMAGE = {
    "data halved": ("data/chunk-000/file-003.parquet", "halve"),
    "episodes emptied": ("meta/episodes/chunk-000/file-005.parquet", "empty"),
    "episodes deleted": ("meta/episodes/chunk-000/file-002.parquet", "delete"),
    "tasks deleted": ("meta/tasks.parquet", "delete"),
    "info cut": ("meta/info.json", "halve"),
    "attempts deleted": ("meta/synth/attempts/chunk-000/file-004.parquet", "delete"),
    "progress cut": (".synth/progress.json", "halve"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_committed_files_are_named_then_repaired(ref, tmp_path, case, capsys):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(ref, out)
    rel, how = DAMAGE[case]
    f = out / rel
    if how == "delete":
        f.unlink()
    else:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2] if how == "halve" else b"")
    capsys.readouterr()
    for cmd in (["inspect", f"out={out}"], ["generate", f"out={out}", *ARGS[:-2], "n=20", "shard=1", "workers=1"]):
        assert main(*cmd) == 2, cmd
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and rel in err and "synth verify" in err, err
    assert main("verify", f"out={out}") == 2
    err = capsys.readouterr().err
    assert f"damaged: {rel}" in err
    assert main("repair", f"out={out}") == 0
    assert main("verify", f"out={out}") == 0, capsys.readouterr().err
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


def test_changed_contents_are_found_by_checksum(ref, tmp_path, capsys):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(ref, out)
    f = out / "data/chunk-000/file-007.parquet"
    b = bytearray(f.read_bytes())
    b[len(b) // 3] ^= 0xFF  # same size: only the checksum sees it
    f.write_bytes(bytes(b))
    assert main("verify", f"out={out}") == 2
    assert "data/chunk-000/file-007.parquet: contents changed" in capsys.readouterr().err
    assert main("repair", f"out={out}") == 0
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


def test_a_second_run_on_a_locked_out_is_refused_naming_the_holder(ref, tmp_path):
    out = tmp_path / "d"
    lock.acquire(out)  # this process is the first run
    try:
        r = gen(out)
    finally:
        lock.release(out)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"PID {os.getpid()}" in r.stderr and "being written by" in r.stderr
    assert not (out / "data").exists(), "nothing written"


def test_two_identical_runs_at_once_write_one_correct_dataset(ref, tmp_path):
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", *ARGS]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(), p.communicate()[1], p.pid) for p in procs]
    assert {rc for rc, _, _ in results} <= {0, 2} and 0 in {rc for rc, _, _ in results}, results
    for rc, err, pid in results:
        if rc == 2:
            other = next(q for _, _, q in results if q != pid)
            assert f"PID {other}" in err and err.count("\n") == 1, err
    assert_same(out, ref)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task")
    return [int(c) for t in path.glob("*/children") for c in t.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_workers(p: subprocess.Popen, count: int) -> list[int]:
    t0 = time.time()
    while time.time() - t0 < 60:
        kids = _children(p.pid)
        if len(kids) >= count:
            return kids
        time.sleep(0.1)
    raise AssertionError("workers never started")


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "T"
    except OSError:
        return False


def test_a_killed_worker_is_replaced_and_the_dataset_is_exact(ref, tmp_path):
    """A worker killed from outside while it holds shard 3 (held there by `stall@3`: the run's 12 shards can
    finish in under a second, before a kill at a guessed time lands)."""
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", *ARGS[:-1], "workers=2"]
    env = {**os.environ, "SYNTH_FAULT": "stall@3"}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    t0 = time.time()
    while not (held := [k for k in _children(p.pid) if _stopped(k)]):
        assert time.time() - t0 < 120 and p.poll() is None, "no worker stopped at shard 3"
        time.sleep(0.05)
    os.kill(held[0], signal.SIGKILL)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "a worker process died" in err
    assert_same(out, ref)


def test_a_shard_that_kills_its_worker_every_time_stops_in_one_line_and_resumes(ref, tmp_path):
    out = tmp_path / "d"
    r = gen(out, fault="worker@3")  # the worker SIGKILLs itself each time it starts shard 3
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    # the pool cannot say whose worker died: shard 3, or the shards in flight at every death, 3 among them
    named = re.fullmatch(
        r"error: (shard 3|one of shards ([\d, ]+) \(in flight each time\)) killed its worker 3 times; "
        r"3 episodes are committed: rerun the same command to resume",
        last,
    )
    assert named and (named[2] is None or "3" in named[2].split(", ")), r.stderr
    assert "Traceback" not in r.stderr
    assert main("verify", f"out={out}") == 0
    assert main("generate", f"out={out}", *ARGS) == 0
    assert_same(out, ref)


def test_workers_die_with_the_main_process(tmp_path):
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", "n=400", "workers=2"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = _wait_for_workers(p, 2)
    os.kill(p.pid, signal.SIGKILL)  # the main process alone
    p.wait()
    t0 = time.time()
    while any(_alive(k) for k in kids) and time.time() - t0 < 10:
        time.sleep(0.1)
    survivors = [k for k in kids if _alive(k)]
    for k in survivors:
        os.kill(k, signal.SIGKILL)
    assert survivors == [], "orphaned workers"


def test_a_kill_after_a_video_is_renamed_resumes_exactly(tmp_path):
    """Rendered: the commit moves staged mp4s into place; a kill after that rename, and a staged video cut
    short by a power cut, end in the uninterrupted run's files."""
    pytest.importorskip("synth.render")
    cams = [*ARGS[:2], "n=3", *ARGS[3:], "cameras=[front]", "resolution=[32,32]"]
    ref, out = tmp_path / "ref", tmp_path / "d"
    assert gen(ref, args=cams).returncode == 0
    assert gen(out, args=cams, fault="renamed-video@1").returncode == -signal.SIGKILL
    assert gen(out, args=cams, fault="staged@2").returncode == -signal.SIGKILL
    video = out / ".synth/staging/shard-000002/front.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    assert main("generate", f"out={out}", *cams) == 0
    assert_same(out, ref)  # its verify probes every episode's frames in the mp4s
    mp4 = sorted(f.relative_to(ref) for f in (ref / "videos").rglob("*.mp4"))
    assert mp4 and [f for f in mp4 if (out / f).read_bytes() != (ref / f).read_bytes()] == [], "mp4 bytes differ"
