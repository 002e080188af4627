import subprocess
import sys

import pytest

from synth.config import compose_config, settings
from synth.errors import ConfigError


def test_n_as_typed_in_scientific_notation():
    s = settings(compose_config(["n=1e6"]))
    assert s.n == 1_000_000 and isinstance(s.n, int)


def test_group_overrides_and_params():
    s = settings(
        compose_config(["randomizers=[lighting,table]", "randomizers.table.height=[0.7,0.72]", "task.lift=0.1"])
    )
    assert [r.name for r in s.randomizers] == ["lighting", "table"]
    assert s.randomizers[1].height == (0.7, 0.72) and s.task.lift == 0.1


def test_fingerprint_ignores_run_only_keys():
    a = settings(compose_config(["n=5", "workers=1", "shard=16"])).fingerprint()
    b = settings(compose_config(["n=50", "workers=2", "progress=false", "shard=16"])).fingerprint()
    c = settings(compose_config(["n=5", "seed=1", "shard=16"])).fingerprint()
    assert a == b and a != c


@pytest.mark.parametrize(
    "override, message",
    [
        ("task=pick_plac", "unknown task 'pick_plac'.*did you mean 'pick_place'"),
        ("embodiment=pand", "unknown embodiment 'pand'"),
        ("randomizers=[lightin]", "unknown randomizer 'lightin'.*did you mean 'lighting'"),
        ("n=0", "whole number of episodes >= 1"),
        ("n=-5", "whole number of episodes >= 1"),
        ("n=abc", "is not a number"),
        ("randomizers.lighting.intensity=[0.9,0.1]", "low 0.9 > high 0.1"),
        ("control_hz=0", "give a control rate in"),
        ("cameras=[side]", "unknown camera 'side'"),
        ("workers=0", "workers=0"),
        ("bogus=1", "bad override"),
    ],
)
def test_bad_input_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        settings(compose_config([override]))


def test_cli_exit_code_and_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "synth.cli", "generate", "task=pik_place", f"out={tmp_path / 'd'}"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "did you mean 'pick_place'" in r.stderr
    assert not (tmp_path / "d").exists(), "nothing written on bad input"


def test_cli_help_lists_plugins():
    r = subprocess.run([sys.executable, "-m", "synth.cli", "generate", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("pick_place", "panda", "lighting", "object_pose", "n ", "workers", "cameras"):
        assert word in r.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["backend=pybullet", "randomizers=[object_shape,restitution]"], "backend=pybullet does not map"),
        (["backend=pybullet", "randomizers.object_shape.shapes=[box,cup]"], "backend=pybullet does not map"),
        (
            ["task=bimanual_lift", "embodiment=aloha", "randomizers=[arm_dynamics]"]
            + ["randomizers.arm_dynamics.joints=7"],
            "arm_dynamics.joints=12",
        ),
        (["task=bimanual_lift", "embodiment=aloha", "counterfactuals=2"], "counterfactuals=2 needs"),
    ],
)
def test_combinations_that_would_be_silently_wrong_are_refused(overrides, message):
    from synth.config import compose_config, settings

    with pytest.raises(ConfigError, match=message):
        settings(compose_config(overrides))
