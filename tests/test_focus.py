"""Eval-driven generation (synth.focus): the weights' rule, the shifted draws, and `synth generate focus=`."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from synth import focus as F
from synth.randomize import apply
from synth.registry import RANDOMIZERS, TASKS

NAMES = ("object_shape", "object_pose", "target", "lighting")


def _report(path, n=120, seed=0):
    """An eval report (the fields `synth eval` writes per cell) of a policy that fails mostly at large x: 80% of
    episodes with x > 0.575 fail, 10% elsewhere; the `position` axis (its own x range) must not count."""
    rng = np.random.default_rng(seed)
    draws, results = [], []
    for _ in range(n):
        x = float(rng.uniform(0.38, 0.62))
        draws.append({"object_pose": {"x": x, "y": float(rng.uniform(-0.22, 0.22))}, "lighting": {"tint": 0.0}})
        results.append("not_lifted" if rng.random() < (0.8 if x > 0.575 else 0.1) else "")
    far = [{"object_pose": {"x": 0.6}}] * 10  # the position axis: x from [0.62, 0.68] in truth; left out
    position = {"draws": far, "results": [""] * 10, "overrides": {"object_pose": ["x"]}}  # the keys it draws itself
    cells = {"in_distribution": {"draws": draws, "results": results}, "position": position}
    path.write_text(json.dumps({"task": "pick_place", "axes": cells}))
    return path


def _rands():
    return [RANDOMIZERS.build(n, {}) for n in NAMES]


def test_weights_follow_failures_with_a_floor(tmp_path):
    fo = F.load(str(_report(tmp_path / "r.json")), _rands(), "pick_place")
    x = next(f for f in fo.fields if (f.name, f.key) == ("object_pose", "x"))
    w = np.asarray(x.weights)
    assert fo.fields[0] is x  # the widest spread comes first
    assert np.argmax(w) == F.BINS - 1 and w.min() >= F.FLOOR - 1e-9 and abs(w.mean() - 1) < 1e-5
    assert sum(x.episodes) == 120 and "position" not in x.per_axis  # the axis that overrides x is left out
    assert fo.weight({"object_pose": {"x": 0.61}}) == pytest.approx(w[-1] * fo.weight({"object_pose": {"x": 0.7}}))
    assert len(fo.sha256) == 64 and json.loads(json.dumps(fo.record()))["fields"][0]["key"] == "x"


def test_focus_shifts_draws_toward_failed_bins_and_keeps_every_bin(tmp_path):
    """Default draws of x are uniform over 5 bins; the focused ones put about w_b / 5 in bin b (the last bin
    more than twice its default share) and every bin keeps at least the floor's share."""
    rands, task = _rands(), TASKS.build("pick_place", {})
    fo = F.load(str(_report(tmp_path / "r.json")), rands, "pick_place")
    x = next(f for f in fo.fields if (f.name, f.key) == ("object_pose", "x"))
    n = 400
    edges = np.linspace(x.lo, x.hi, F.BINS + 1)
    default = [apply(rands, task.scene(), 5, i)[1]["object_pose"]["x"] for i in range(n)]
    focused = [F.draw(rands, task.scene(), 5, i, fo)[1] for i in range(n)]
    d_share = np.histogram(default, edges)[0] / n
    f_share = np.histogram([d["object_pose"]["x"] for d in focused], edges)[0] / n
    assert f_share[-1] > 2 * d_share[-1] and f_share[-1] > 0.3, (d_share, f_share)
    assert (f_share >= 0.6 * F.FLOOR / F.BINS).all(), f_share  # no part of the range disappears
    assert all(0 <= d["focus"]["candidate"] < F.CANDIDATES for d in focused)
    again = F.draw(rands, task.scene(), 5, 7, fo)[1]
    assert again == focused[7]  # from (seed, attempt) alone


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_generate_with_focus_records_it_and_is_reproducible(tmp_path):
    rep = _report(tmp_path / "r.json")
    common = ("n=6", "seed=2", "shard=8", "progress=false", "randomizers=[object_shape,object_pose,target,lighting]")
    outs = [tmp_path / "a", tmp_path / "b"]
    for o in outs:
        cli("generate", f"out={o}", f"focus={rep}", "workers=1", *common)
    meta = json.loads((outs[0] / "meta" / "synth.json").read_text())
    assert meta["focus"]["sha256"] == F.load(str(rep), _rands(), "pick_place").sha256
    assert meta["focus"]["fields"][0]["key"] == "x" and len(meta["focus"]["fields"][0]["weights"]) == F.BINS
    files = sorted(p.relative_to(outs[0]) for p in (outs[0] / "data").rglob("*.parquet"))
    assert files
    for f in files:  # same seed, same focus: the same episodes
        assert pq.read_table(outs[0] / f).equals(pq.read_table(outs[1] / f))
    att = pq.read_table(next((outs[0] / "meta" / "synth" / "attempts").rglob("*.parquet"))).to_pylist()
    assert all("focus" in json.loads(a["draws"]) for a in att)
    from synth.replay import replay

    for e in range(2):  # the physics of a focused episode is rebuilt from its record: the scene of its candidate
        r = replay(outs[0], e)
        assert np.abs(r.replayed_state - r.recorded_state).max() < 1e-4
    assert any(json.loads(a["draws"])["focus"]["candidate"] > 0 for a in att)
    shown = cli("inspect", f"out={outs[0]}").stdout
    assert "focus: " in shown and "default / focus / drawn" in shown and "object_pose.x" in shown
    r = cli("generate", f"out={tmp_path / 'c'}", f"focus={tmp_path / 'none.json'}", *common, check=False)
    assert r.returncode == 2 and "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
    r = cli("generate", f"out={outs[0]}", "workers=1", *common, check=False)  # the same out without the focus
    assert r.returncode == 2 and "focus" in r.stderr
