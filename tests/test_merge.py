"""part=i/K and `synth merge`: the parts of a run merged equal the single run, episode for episode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synth import cli
from synth.dataset.reader import LeRobotDir

# kinematic: fast, and about 5% of its attempts fail, so shards hold different numbers of episodes
KEYS = ["progress=false", "seed=3", "mode=kinematic", "shard=16", "workers=2"]
N = 150


def gen(out: Path, *overrides: str) -> None:
    assert cli.main(["generate", f"out={out}", *KEYS, *overrides]) == 0


def same_dataset(a: Path, b: Path) -> None:
    """Byte-equal data files, episode rows, tasks, info and stats; equal attempt records but for their timings."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and ".synth" not in p.parts)
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and ".synth" not in p.parts)
    for f in files:
        if f.parts[:3] == ("meta", "synth", "attempts"):
            ta, tb = pq.read_table(a / f), pq.read_table(b / f)
            assert ta.drop(["seconds"]).equals(tb.drop(["seconds"])), f
        elif f != Path("meta/synth.json"):  # the config record (out, n, workers) and the timings may differ
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    pa_, pb = (json.loads((d / ".synth" / "progress.json").read_text()) for d in (a, b))
    assert pa_ == pb


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "d"
    gen(out, f"n={N}")
    return out


def test_three_parts_merged_equal_one_run(whole, tmp_path):
    for i in range(3):
        gen(tmp_path / f"p{i}", f"n={N}", f"part={i}/3")
    p0 = LeRobotDir(tmp_path / "p0")
    assert p0.validate() == [] and p0.info["total_episodes"] == 50 + 16, "its share and a shard's worth"
    assert cli.main(["merge", f"out={tmp_path / 'all'}", f"parts={tmp_path}/p*"]) == 0
    same_dataset(whole, tmp_path / "all")
    assert LeRobotDir(tmp_path / "all").validate() == []
    assert cli.main(["verify", f"out={tmp_path / 'all'}"]) == 0, "a first-class store: its manifest checks"
    assert cli.main(["merge", f"out={tmp_path / 'all'}", f"parts={tmp_path}/p*"]) == 0, "finished: nothing to do"
    same_dataset(whole, tmp_path / "all")


def test_a_merged_dataset_verifies_and_names_a_changed_byte(whole, tmp_path, capsys):
    for i in range(2):
        gen(tmp_path / f"p{i}", "n=40", f"part={i}/2")
    merged = tmp_path / "all"
    assert cli.main(["merge", f"out={merged}", f"parts={tmp_path}/p*"]) == 0
    capsys.readouterr()
    assert cli.main(["verify", f"out={merged}"]) == 0, capsys.readouterr().err
    f = merged / "data/chunk-000/file-001.parquet"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF  # same size: only the checksum the merge recorded sees it
    f.write_bytes(bytes(b))
    assert cli.main(["verify", f"out={merged}"]) == 2
    assert "damaged: data/chunk-000/file-001.parquet: contents changed" in capsys.readouterr().err


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synth.cli", *argv], capture_output=True, text=True, timeout=120)


def test_a_merge_holds_the_lock_on_its_out(tmp_path, monkeypatch):
    """While a merge writes `out`, a generate (or another merge) on it is refused naming the merge; a merge on an
    `out` another process holds is refused before it writes."""
    from synth import merge as M
    from synth.dataset import lock

    for i in range(2):
        gen(tmp_path / f"p{i}", "n=20", f"part={i}/2")
    merged, seen = tmp_path / "all", []
    stage = M.stage

    def stage_and_try_a_second_writer(*args):
        if not seen:
            seen.append(_cli("generate", f"out={merged}", *KEYS, "n=20"))
        return stage(*args)

    monkeypatch.setattr(M, "stage", stage_and_try_a_second_writer)
    assert cli.main(["merge", f"out={merged}", f"parts={tmp_path}/p*"]) == 0
    r = seen[0]
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"being written by PID {os.getpid()}" in r.stderr and "(synth merge)" in r.stderr, r.stderr

    other = tmp_path / "other"
    lock.acquire(other, "synth generate")  # this process plays a run writing `other`
    try:
        r = _cli("merge", f"out={other}", f"parts={tmp_path}/p*")
    finally:
        lock.release(other)
    assert r.returncode == 2 and f"PID {os.getpid()}" in r.stderr and "(synth generate)" in r.stderr, r.stderr
    assert [p.name for p in other.rglob("*")] == [".synth", "lock"], "nothing written"


def test_a_short_part_is_named_with_its_n_then_rerun(whole, tmp_path, capsys):
    gen(tmp_path / "p0", f"n={N}", "part=0/2")
    gen(tmp_path / "p1", "n=40", "part=1/2")  # stops far short of what n=150 needs from it
    merged = tmp_path / "all"
    capsys.readouterr()
    assert cli.main(["merge", f"out={merged}", f"parts=[{tmp_path / 'p0'},{tmp_path / 'p1'}]", f"n={N}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "part 1/2" in err and "part 0/2" not in err, err
    assert not merged.exists(), "checked before anything is written"
    n = int(err.split("with n=")[1].split()[0])
    assert n > 40
    gen(tmp_path / "p1", f"n={n}", "part=1/2")
    assert cli.main(["merge", f"out={merged}", f"parts=[{tmp_path / 'p0'},{tmp_path / 'p1'}]", f"n={N}"]) == 0
    same_dataset(whole, merged)


def test_fewer_episodes_than_the_parts_hold(whole, tmp_path):
    """n=101 ends inside a shard: the merge takes part of it, as the single run of n=101 does."""
    one = tmp_path / "one"
    gen(one, "n=101")
    for i in range(2):
        gen(tmp_path / f"p{i}", f"n={N}", f"part={i}/2")
    assert cli.main(["merge", f"out={tmp_path / 'all'}", f"parts={tmp_path}/p*", "n=101"]) == 0
    same_dataset(one, tmp_path / "all")


def test_refusals(tmp_path, capsys):
    gen(tmp_path / "p0", "n=20", "part=0/2")
    gen(tmp_path / "q1", "n=20", "part=1/2", "seed=4")
    gen(tmp_path / "plain", "n=5")
    cases = {
        f"parts=[{tmp_path / 'p0'}]": "part 1/2 missing",
        f"parts=[{tmp_path / 'p0'},{tmp_path / 'q1'}]": "other keys",
        f"parts=[{tmp_path / 'p0'},{tmp_path / 'plain'}]": "not made with part=i/K",
        f"parts={tmp_path}/nothing*": "nothing matches",
    }
    for arg, msg in cases.items():
        capsys.readouterr()
        assert cli.main(["merge", f"out={tmp_path / 'all'}", arg]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "all").exists()
    assert cli.main(["generate", f"out={tmp_path / 'x'}", "part=2/2"]) == 2
    assert cli.main(["generate", f"out={tmp_path / 'x'}", "address=auto"]) == 2


def test_rendered_parts_merged_equal_one_run_videos_included(tmp_path):
    """The merge stages each shard's mp4s with it (flushed before the shard is named): the merged videos are the
    single run's bytes, and the merged dataset verifies."""
    pytest.importorskip("synth.render")
    keys = ["progress=false", "seed=5", "shard=1", "workers=1", "cameras=[front]", "resolution=[32,32]", "n=4"]
    assert cli.main(["generate", f"out={tmp_path / 'one'}", *keys]) == 0
    for i in range(2):
        assert cli.main(["generate", f"out={tmp_path / f'p{i}'}", *keys, f"part={i}/2"]) == 0
    assert cli.main(["merge", f"out={tmp_path / 'all'}", f"parts={tmp_path}/p*"]) == 0
    same_dataset(tmp_path / "one", tmp_path / "all")
    assert len(list((tmp_path / "all" / "videos").rglob("*.mp4"))) == 4
    assert cli.main(["verify", f"out={tmp_path / 'all'}"]) == 0
