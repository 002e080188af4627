"""`physics.*` keys: checked, applied to the MjModel, recorded in the dataset, held by the fingerprint, replayed."""

import json
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from synth.config import compose_config, settings
from synth.dataset.writer import DATASET_VERSION
from synth.errors import ConfigError
from synth.physics import Physics, largest_step, recorded, resolve


def test_default_is_the_tasks_rule():
    s = settings(compose_config(["task=sort"]))
    assert s.physics == Physics(0.002, "implicitfast", 100, 1e-8)
    assert "physics" not in s.fingerprint(), "datasets written before physics.* keep their fingerprint"
    assert settings(compose_config(["task=push", "control_hz=15"])).physics.timestep == pytest.approx(1 / (15 * 34))
    assert largest_step(20, 0.004) == pytest.approx(1 / 260)
    pp = settings(compose_config(["task=pick_place"]))  # measured: 5 ms labels as 1 ms does (benchmarks/physics_step)
    assert pp.physics == Physics(0.005) and pp.fingerprint()["physics"]["timestep"] == 0.005
    assert settings(compose_config(["control_hz=15"])).physics.timestep == pytest.approx(1 / (15 * 14))
    assert settings(compose_config(["task=place_in_container"])).physics == Physics(0.005), "measured: 99.90%"
    assert settings(compose_config(["task=open_drawer"])).physics == Physics(0.005), "measured: 100%"
    assert settings(compose_config(["physics.timestep=0.002"])).physics == s.physics, "today's step, asked for"


def test_keys_reach_the_mjmodel():
    from synth.generate import make_worker

    over = ["physics.timestep=0.005", "physics.integrator=euler", "physics.iterations=20", "physics.tolerance=1e-6"]
    s = settings(compose_config(over))
    opt = make_worker(s).prepare(0).model.opt
    assert opt.timestep == 0.005 and opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert opt.iterations == 20 and opt.tolerance == 1e-6
    assert s.fingerprint()["physics"] == {"timestep": 0.005, "integrator": "euler", "iterations": 20, "tolerance": 1e-6}


@pytest.mark.parametrize(
    "override, message",
    [
        ("physics.timestep=0.004", "does not divide the 0.05 s control period.*0.005"),
        ("physics.timestep=0.1", "does not divide"),
        ("physics.timestep=-0.001", "does not divide"),
        ("physics.timestep=fast", "give seconds"),
        ("physics.integrator=rk5", "choose one of implicitfast, implicit, euler, rk4"),
        ("physics.iterations=0", "iterations >= 1"),
        ("physics.tolerance=2", r"tolerance in \[0, 1\)"),
        ("physics.substeps=3", "bad override"),
    ],
)
def test_bad_physics_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        settings(compose_config([override]))


def test_kinematic_mode_refuses_physics_keys():
    with pytest.raises(ConfigError, match="mode=kinematic runs no physics"):
        settings(compose_config(["mode=kinematic", "physics.timestep=0.001"]))
    assert "physics" not in settings(compose_config(["mode=kinematic"])).fingerprint(), "no physics, no record"


def test_resolve_is_exact_for_whole_fractions():
    """A step given as typed lands on the same float as the rule's, so fingerprints compare equal."""
    assert resolve({"timestep": 0.002}, 20.0) == Physics(largest_step(20.0))
    assert resolve({"timestep": 1 / 260}, 20.0).timestep == largest_step(20.0, 0.004)


def test_bad_timestep_cli_is_one_line_exit_2(tmp_path):
    cmd = [sys.executable, "-m", "synth.cli", "generate", "physics.timestep=0.003", f"out={tmp_path / 'd'}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: physics.timestep=0.003")
    assert not (tmp_path / "d").exists(), "nothing written on bad input"


def test_dataset_records_physics_replays_it_and_refuses_other_physics(tmp_path):
    from synth.replay import replay

    out = tmp_path / "d"
    base = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", "seed=5", "workers=1"]
    over = ["n=2", "shard=4", "physics.timestep=0.005", "physics.iterations=30"]
    r = subprocess.run(base + over, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "meta" / "synth.json").read_text())
    assert meta["physics"] == {"timestep": 0.005, "integrator": "implicitfast", "iterations": 30, "tolerance": 1e-8}
    assert recorded(meta) == Physics(0.005, "implicitfast", 30, 1e-8)
    assert meta["dataset_version"] == DATASET_VERSION == 3, "pick_place's step (2); planner, detours, ... (3)"
    rep = replay(out, 1)
    assert rep.model.opt.timestep == 0.005 and rep.model.opt.iterations == 30
    np.testing.assert_allclose(rep.replayed_state, rep.recorded_state, atol=1e-5)
    r = subprocess.run(base + ["n=4", "shard=4"], capture_output=True, text=True)  # resumed with the default physics
    assert r.returncode == 2 and "differs in physics" in r.stderr


def test_datasets_without_a_physics_record_replay_with_the_old_rule():
    assert recorded({"config": {"control_hz": 15}}) == Physics(1 / (15 * 34))
