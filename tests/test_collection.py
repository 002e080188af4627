"""embodiment=[a,b]: one dataset of several bodies, a LeRobot part per body, read back by inspect and train."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from synth.collection import expand, shares, split
from synth.errors import ConfigError


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_two_bodies_in_one_dataset(tmp_path):
    out = tmp_path / "mix"
    args = ["generate", "embodiment=[panda,ur5e]", "n=4", f"out={out}", "workers=1", "progress=false"]
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "collection.json").read_text())
    assert manifest["parts"] == ["panda", "ur5e"] and manifest["n"] == 4
    for body, dof in (("panda", 7), ("ur5e", 6)):
        info = json.loads((out / body / "meta" / "info.json").read_text())
        assert info["robot_type"] == body and info["total_episodes"] == 2
        assert info["features"]["observation.state"]["shape"] == [dof + 1]
        card = json.loads((out / body / "meta" / "synth.json").read_text())["embodiments"][body]
        assert card["dof"] == dof
    before = pq.read_table(next((out / "ur5e" / "data").rglob("*.parquet"))).num_rows
    r = _run(*args)  # a rerun resumes: nothing new, nothing lost
    assert r.returncode == 0, r.stderr
    assert pq.read_table(next((out / "ur5e" / "data").rglob("*.parquet"))).num_rows == before
    r = _run("inspect", f"out={out}")
    assert r.returncode == 0 and "robot panda" in r.stdout and "robot ur5e" in r.stdout
    r = _run("verify", f"out={out}")  # each part checked
    assert r.returncode == 0 and r.stdout.count("healthy") == 2, r.stderr
    data, weights = expand((str(out), "other"), (2.0, 1.0))
    assert data == (str(out / "panda"), str(out / "ur5e"), "other") and weights == (1.0, 1.0, 1.0)


def test_overrides_and_shares():
    parts, rest = split(["n=3", "embodiment=[panda, ur5e]"])
    assert parts == [("panda", ["embodiment=panda"]), ("ur5e", ["embodiment=ur5e"])] and rest == ["n=3"]
    assert split(["embodiment=panda"]) == ([], ["embodiment=panda"])
    parts, _ = split(["control_hz=[10,20]", "embodiment=[panda,ur5e]"])
    assert [p for p, _ in parts] == ["panda_10hz", "panda_20hz", "ur5e_10hz", "ur5e_20hz"]
    assert parts[1][1] == ["embodiment=panda", "control_hz=20"]
    assert shares(5, 2) == [2, 3] and sum(shares(1000, 3)) == 1000


def test_bad_collections_get_one_line(tmp_path):
    r = _run("generate", "embodiment=[panda,panda]", f"out={tmp_path / 'x'}")
    assert r.returncode == 2 and "two or more different values" in r.stderr
    r = _run("generate", "embodiment=[panda,pandaa]", f"out={tmp_path / 'y'}", "n=2")
    assert r.returncode == 2 and "did you mean 'panda'" in r.stderr and not (tmp_path / "y" / "panda").exists()
    with pytest.raises(ConfigError, match="no written part"):
        (tmp_path / "z").mkdir()
        (tmp_path / "z" / "collection.json").write_text(json.dumps({"parts": ["a", "b"]}))
        expand((str(tmp_path / "z"),), ())


def test_control_rates_as_parts(tmp_path):
    out = tmp_path / "rates"
    r = _run("generate", "control_hz=[10,25]", "n=2", f"out={out}", "workers=1", "progress=false")
    assert r.returncode == 0, r.stderr
    for part, hz in (("10hz", 10.0), ("25hz", 25.0)):
        info = json.loads((out / part / "meta" / "info.json").read_text())
        assert info["fps"] == hz and info["total_episodes"] == 1
