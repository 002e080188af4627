import mujoco
import numpy as np
import pytest

from synth.embodiment import load, names
from synth.errors import ConfigError
from synth.robot import robot_only


@pytest.mark.parametrize("name", names())
def test_every_embodiment_builds_with_limits_in_radians(name):
    emb = load(name)
    m = robot_only(emb)
    assert m.nu == emb.dof + 1
    np.testing.assert_allclose(m.jnt_range[: emb.dof], np.stack([emb.lower, emb.upper], 1))
    assert np.all(emb.lower < np.array(emb.home)) and np.all(np.array(emb.home) < emb.upper)


def test_panda_forward_kinematics_matches_published_ready_pose():
    """Franka's 'ready' pose puts the flange 0.107 m below joint 7, TCP 0.1034 m further, at x=0.307 m."""
    emb = load("panda")
    m = robot_only(emb)
    d = mujoco.MjData(m)
    d.qpos[:7] = emb.home
    mujoco.mj_kinematics(m, d)
    tcp = d.site("tcp")
    np.testing.assert_allclose(tcp.xpos, [0.30702, 0.0, 0.48687], atol=1e-4)
    np.testing.assert_allclose(tcp.xmat.reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-3)  # pointing down


def test_panda_masses_are_the_published_ones():
    emb = load("panda")
    m = robot_only(emb)
    for i, j in enumerate(emb.joints):
        assert m.body(f"link{i + 1}").mass[0] == pytest.approx(j.mass)


def test_card_names_the_action_layout():
    card = load("panda").card(20.0, cameras=("front",))
    assert card["action"]["names"][-1] == "gripper" and card["dof"] == 7
    assert card["control_hz"] == 20.0 and "metres" in card["gripper"]["semantics"]


def test_unknown_embodiment_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'panda'"):
        load("pandaa")
