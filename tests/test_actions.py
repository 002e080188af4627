"""Action conventions: every one is a faithful rewrite of the joint targets the physics executed."""

import json
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from synth.actions import CONVENTIONS
from synth.embodiment import load
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.replay import replay


def _episodes(action, emb="panda"):
    rands = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    w = Worker(TASKS.build("pick_place"), rands, load(emb), seed=4, action=action)
    eps, _ = w.block([0, 1, 2])
    assert len(eps) >= 2
    return eps


@pytest.mark.parametrize("emb", ["panda", "ur5e"])
def test_conventions_agree_with_each_other_and_with_the_executed_targets(emb):
    body = load(emb)
    by = {c: {e.attempt: e for e in _episodes(c, emb)} for c in CONVENTIONS}
    for i, jp in by["joint_pos"].items():
        jd, ep, ed = by["joint_delta"][i], by["ee_pose"][i], by["ee_delta"][i]
        T = jp.length
        assert jd.action.shape == (T, body.dof + 1) and ep.action.shape == (T, 8) and ed.action.shape == (T, 7)
        for e in (jd, ep, ed):  # the same physics, whatever the convention
            np.testing.assert_array_equal(e.state, jp.state)
            np.testing.assert_array_equal(e.labels["synth.joint_target"], jp.action)
        np.testing.assert_allclose(jd.action[:, :-1] + jp.state[:, :-1], jp.action[:, :-1], atol=1e-6)
        np.testing.assert_array_equal(jd.action[:, -1], jp.action[:, -1])
        ee = jp.labels["observation.ee_pose"]
        np.testing.assert_allclose(np.linalg.norm(ep.action[:, 3:7], axis=1), 1.0, atol=1e-5)
        assert (ep.action[:, 3] >= 0).all()
        np.testing.assert_allclose(ed.action[:, :3] + ee[:, :3], ep.action[:, :3], atol=1e-5)
        for t in range(0, T, 7):  # rotating the measured orientation by the delta gives the target's
            q = np.empty(4)
            mujoco.mju_copy(q, ee[t, 3:].astype(np.float64))
            rot = np.empty(4)
            mujoco.mju_axisAngle2Quat(
                rot,
                ed.action[t, 3:6] / max(np.linalg.norm(ed.action[t, 3:6]), 1e-12),
                float(np.linalg.norm(ed.action[t, 3:6])),
            )
            out = np.empty(4)
            mujoco.mju_mulQuat(out, rot, q)
            assert abs(abs(out @ ep.action[t, 3:7].astype(np.float64)) - 1) < 1e-4
        # the arm tracks its targets: the TCP target of frame t is where the measured TCP is soon after
        lag = np.linalg.norm(ep.action[:-2, :3] - ee[2:, :3], axis=1)
        assert np.median(lag) < 0.01, np.median(lag)


def test_a_dataset_in_another_convention_says_so_and_replays(tmp_path):
    out = tmp_path / "d"
    cmd = [
        sys.executable,
        "-m",
        "synth.cli",
        "generate",
        f"out={out}",
        "n=2",
        "workers=1",
        "progress=false",
        "action=ee_delta",
        "randomizers=[object_pose]",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["action"]["names"] == ["dx", "dy", "dz", "rx", "ry", "rz", "gripper"]
    assert info["features"]["synth.joint_target"]["shape"] == [8]
    card = json.loads((out / "meta" / "synth.json").read_text())["embodiments"]["panda"]
    assert card["action"]["convention"] == "ee_delta" and card["action"]["units"][:3] == ["m"] * 3
    r = replay(out, 1)
    np.testing.assert_allclose(r.replayed_state, r.recorded_state, atol=1e-5)


def test_an_unknown_convention_is_refused_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={tmp_path / 'x'}", "n=1", "action=ee_vel"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "action='ee_vel'" in r.stderr and "joint_delta" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
