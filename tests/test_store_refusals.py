"""Bad input around the store: one line naming the fix, exit code 2, checked before anything is written."""

import errno
import os
import subprocess
import sys

import pyarrow.parquet as pq

from synth import cli
from synth import generate as g

BASE = ["progress=false", "n=1"]


def refused(capsys, out, *args: str) -> str:
    assert cli.main(["generate", f"out={out}", *BASE, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists(), "nothing written"
    return err


def test_negative_seed(tmp_path, capsys):
    assert "seed=-1" in refused(capsys, tmp_path / "d", "seed=-1")


def test_resolution_beyond_the_render_buffer(tmp_path, capsys):
    err = refused(capsys, tmp_path / "d", "cameras=[front]", "resolution=[100000,100000]")
    assert "4096" in err


def test_mesh_dir_without_the_file_shape(tmp_path, capsys):
    err = refused(capsys, tmp_path / "d", f"randomizers.object_shape.mesh_dir={tmp_path}")
    assert "shapes=[file]" in err


def test_a_ray_cluster_that_does_not_answer(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = refused(capsys, tmp_path / "d", "executor=ray", f"address=127.0.0.1:{port}")
    assert f"cannot reach the Ray cluster at address=127.0.0.1:{port}" in err
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    assert "cannot reach the Ray cluster" in refused(capsys, tmp_path / "d", "executor=ray")


def test_help_into_a_closed_pipe_is_quiet():
    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is written, as after `| head` has read its lines
    p = subprocess.run(
        [sys.executable, "-m", "synth.cli", "generate", "--help"], stdout=w, stderr=subprocess.PIPE, text=True
    )
    os.close(w)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_disk_full_names_the_file(tmp_path, capsys, monkeypatch):
    def full(table, where, **kw):  # pyarrow's error on a full disk, as it raises it: errno 28 and no file name
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    out = tmp_path / "d"
    assert cli.main(["generate", f"out={out}", *BASE, "shard=2", "workers=1"]) == 2
    err = capsys.readouterr().err
    assert "disk full while writing" in err and str(out / "data" / "chunk-000" / "file-000.parquet") in err, err


def test_workers_are_bounded_by_cores_and_shards(tmp_path, capsys, monkeypatch):
    forked = []
    real = g._pool
    monkeypatch.setattr(g, "_pool", lambda s: forked.append(s.workers) or real(s))
    assert cli.main(["generate", f"out={tmp_path / 'd'}", "progress=false", "n=2", "workers=1000"]) == 0
    err = capsys.readouterr().err
    assert f"workers=1000 is more than the {len(os.sched_getaffinity(0))} cores" in err
    assert forked == [1], "n=2 fits one shard: one worker"


def test_workers_beyond_free_memory_are_capped_with_a_warning(monkeypatch, capsys):
    from dataclasses import dataclass, field

    from synth import procs

    @dataclass(frozen=True)
    class S:  # the fields of Settings that bound_workers reads
        workers: int = 32
        shard: int = 64
        resolution: tuple = (128, 128)
        cameras: tuple = ("front", "wrist")
        raw: dict = field(default_factory=lambda: {"workers": 32})

    monkeypatch.setattr(procs, "cores", lambda: 64)
    monkeypatch.setattr(procs, "available_memory", lambda: 4 << 30)
    s = S()
    per = procs.worker_bytes(s)
    assert per > 900 << 20, "a shard of two cameras' frames is held until its videos are written"
    got = procs.bound_workers(s, missing=10_000, rate=0.9)
    assert got.workers == (4 << 30) // per >= 1
    assert "free memory" in capsys.readouterr().err
    assert procs.bound_workers(s, missing=10, rate=0.9).workers == 1, "one shard: one worker"
