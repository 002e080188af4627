"""The two-arm plumbing: refusals, arm-vs-arm collisions, per-arm state and end-effector poses."""

import mujoco
import numpy as np
import pytest

from synth.config import compose_config, settings
from synth.embodiment import load
from synth.errors import ConfigError
from synth.ik import IK
from synth.pipeline import Worker
from synth.planners.collision import Checker
from synth.pose import yaw_matrix
from synth.registry import TASKS
from synth.robot import robot_only
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.types import Obj, Scene


@pytest.mark.parametrize(
    "task, emb, message",
    [
        ("bimanual_lift", "panda", "task=bimanual_lift drives 2 arm.*panda has 1; use embodiment=aloha"),
        ("pick_place", "aloha", "drives 1 arm.*aloha has 2; use embodiment=panda"),
        ("open_drawer", "aloha", "drives 1 arm"),
    ],
)
def test_a_task_refuses_another_number_of_arms(task, emb, message):
    with pytest.raises(ConfigError, match=message):
        settings(compose_config([f"task={task}", f"embodiment={emb}"]))
    with pytest.raises(ConfigError, match=message):  # the Python API too
        Worker(TASKS.build(task), [], load(emb), seed=0)


def _meeting(emb, lay):
    """Both arms' joints (12,) with the two hands at the same point between them, pointing down."""
    q = []
    for arm, m in zip(lay.arms, emb.mounts, strict=True):
        R = yaw_matrix(-arm.yaw)
        down = np.diag([1.0, -1.0, -1.0])
        sol = IK(m.body).solve(R @ (np.array([0.5, 0.0, 0.95]) - arm.base), R @ down, np.array(m.body.home))
        assert sol is not None
        q.append(sol)
    return np.concatenate(q)


def test_arms_collide_with_each_other_in_the_physics_and_the_checker():
    emb = load("aloha")
    model = build(Scene(objects=(Obj(name="obj0", xy=(0.5, 0.3)),)), emb, 1)
    lay = Layout(model, emb)
    d = mujoco.MjData(model)
    d.qpos[:] = initial_qpos(model, emb, lay)
    checker = Checker(model, lay.arm_qadr, lay.robot_bodies, arms=[a.bodies for a in lay.arms])
    checker.set_state(d.qpos)
    side = {int(b): k for k, a in enumerate(lay.arms) for b in a.bodies}

    def arm_pairs() -> set:
        mujoco.mj_forward(model, d)
        pairs = set()
        for c in d.contact[: d.ncon]:
            b1, b2 = (int(model.geom_bodyid[g]) for g in c.geom)
            if b1 in side and b2 in side:
                pairs.add(tuple(sorted((side[b1], side[b2]))))
        return pairs

    assert arm_pairs() == set() and checker(np.array(emb.home)), "at home nothing touches"
    q = _meeting(emb, lay)
    d.qpos[lay.arm_qadr] = q
    assert arm_pairs() == {(0, 1)}, "the hands meet: a left-right contact, none within an arm"
    assert not checker(q)


def test_state_and_ee_pose_are_per_arm_in_each_base_frame():
    """The written state is [left joints, left gripper, right joints, right gripper]; each 7-number block
    of observation.ee_pose is that arm's TCP in its own base frame (forward kinematics of the robot-only
    arm at the recorded joints)."""
    emb = load("aloha")
    w = Worker(TASKS.build("bimanual_lift"), [], emb, seed=0)
    eps, recs = w.block([0])
    assert recs[0]["success"], recs[0]["reason"]
    e = eps[0]
    assert e.state.shape[1] == 14 and e.labels["observation.ee_pose"].shape[1] == 14
    closed = e.labels["synth.phase"] >= w.task.phases.index("lift")
    assert np.all(e.state[closed][:, [6, 13]] < 0.05), "both grippers hold the bar"
    for k, m in enumerate(emb.mounts):
        alone = robot_only(m.body)
        d = mujoco.MjData(alone)
        for t in (0, e.length // 2, e.length - 1):
            d.qpos[:6] = e.state[t, 7 * k : 7 * k + 6]
            mujoco.mj_kinematics(alone, d)
            np.testing.assert_allclose(
                e.labels["observation.ee_pose"][t, 7 * k : 7 * k + 3], d.site("tcp").xpos, atol=2e-6
            )


@pytest.mark.parametrize("action, width", [("joint_delta", 14), ("ee_pose", 16), ("ee_delta", 14)])
def test_action_conventions_per_arm(action, width):
    """Each arm's block is written in the convention (ee_*: in that arm's base frame), gripper last."""
    emb = load("aloha")
    w = Worker(TASKS.build("bimanual_lift"), [], emb, seed=0, action=action)
    eps, _ = w.block([0])
    e = eps[0]
    assert e.action.shape == (e.length, width)
    target = e.labels["synth.joint_target"]
    half = width // 2
    np.testing.assert_array_equal(e.action[:, [half - 1, width - 1]], target[:, [6, 13]])
    if action == "ee_pose":  # the hold's targets are where the hands are
        ee = e.labels["observation.ee_pose"]
        for k in range(2):
            np.testing.assert_allclose(e.action[-1, half * k : half * k + 3], ee[-1, 7 * k : 7 * k + 3], atol=0.01)
            dot = abs(e.action[-1, half * k + 3 : half * k + 7] @ ee[-1, 7 * k + 3 : 7 * k + 7])
            assert dot > 0.999, "target and measured hand orientations agree"


def test_a_pair_has_a_wrist_camera_per_arm():
    s = settings(compose_config(["task=bimanual_lift", "embodiment=aloha", "cameras=[front,left_wrist,right_wrist]"]))
    assert s.cameras == ("front", "left_wrist", "right_wrist")
    with pytest.raises(ConfigError, match="unknown camera 'wrist'.*left_wrist"):
        settings(compose_config(["task=bimanual_lift", "embodiment=aloha", "cameras=[wrist]"]))
