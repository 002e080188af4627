"""Bad input and bad luck: one clear line, exit code 2, nothing already written lost or corrupted."""

import errno
import subprocess
import sys

from synth import cli
from synth.dataset.reader import LeRobotDir
from synth.dataset.writer import Store

GEN = [sys.executable, "-m", "synth.cli", "generate", "progress=false", "seed=2", "shard=4"]


def run(*args):
    return subprocess.run([*GEN, *args], capture_output=True, text=True)


def test_broken_mesh_file_is_named(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "bad.obj").write_text("this is not a mesh\n")
    r = run(
        f"out={tmp_path / 'd'}",
        "n=2",
        "randomizers.object_shape.shapes=[file]",
        f"randomizers.object_shape.mesh_dir={meshes}",
    )
    assert r.returncode == 2 and "bad.obj could not be used" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "d" / "meta").exists()


def test_out_that_cannot_be_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run(f"out={f / 'd'}", "n=1")
    assert r.returncode == 2 and "cannot write to out=" in r.stderr


def test_full_disk_keeps_what_was_written(tmp_path, monkeypatch, capsys):
    out = tmp_path / "d"
    assert run(f"out={out}", "n=4", "workers=1").returncode == 0
    before = LeRobotDir(out).info["total_episodes"]

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "data"))

    monkeypatch.setattr(Store, "commit", full)
    rc = cli.main(["generate", f"out={out}", "n=8", "workers=1", "progress=false", "seed=2", "shard=4"])
    err = capsys.readouterr().err
    assert rc == 2 and "disk full" in err and "rerun the same command to resume" in err
    assert LeRobotDir(out).validate() == [] and LeRobotDir(out).info["total_episodes"] == before
    monkeypatch.undo()
    assert run(f"out={out}", "n=8", "workers=1").returncode == 0
    assert LeRobotDir(out).info["total_episodes"] == 8


KILLER = '''
import os, signal
from dataclasses import dataclass
from pathlib import Path
from synth.randomize import VISUAL, Randomizer
from synth.registry import randomizer

@randomizer("die_once", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class DieOnce(Randomizer):
    """Kills its own worker process the first time it runs (a test of worker death)."""
    stage = VISUAL
    marker: str = ""

    def __call__(self, scene, rng):
        if self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text("died")
            os.kill(os.getpid(), signal.SIGKILL)
        return scene, {}
'''


def test_killed_worker_is_replaced_and_nothing_is_lost(tmp_path, drop_plugin):
    drop_plugin("die_once", KILLER)
    marker = tmp_path / "marker"
    args = ["n=8", "workers=2", "randomizers=[object_pose,die_once]", f"randomizers.die_once.marker={marker}"]
    r = run(f"out={tmp_path / 'a'}", *args)
    assert r.returncode == 0, r.stderr
    assert marker.exists() and "a worker process died" in r.stderr
    ref = run(f"out={tmp_path / 'b'}", *args)  # the marker exists now: nobody dies
    assert ref.returncode == 0 and "died" not in ref.stderr
    a, b = LeRobotDir(tmp_path / "a"), LeRobotDir(tmp_path / "b")
    assert a.validate() == [] and a.info["total_episodes"] == 8
    for i in range(8):
        assert (a.episode(i)["action"] == b.episode(i)["action"]).all()
