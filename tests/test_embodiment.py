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
    assert m.nu == emb.dof + len(emb.mounts) == len(emb.action_names)  # per arm: its joints and a gripper
    jid = [m.joint(j.name).id for j in emb.joints]
    np.testing.assert_allclose(m.jnt_range[jid], np.stack([emb.lower, emb.upper], 1))
    assert np.all(emb.lower < np.array(emb.home)) and np.all(np.array(emb.home) < emb.upper)
    assert [m.actuator(a).name for a in range(m.nu)] == [
        f"{mt.prefix}{n}" for mt in emb.mounts for n in [*(j.name for j in mt.body.joints), "gripper"]
    ], "actuators in action order"


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


def _standard_dh(q, rows):
    """Forward kinematics from standard DH rows (d, a, alpha): Rz(q) Tz(d) Tx(a) Rx(alpha) per joint."""
    T = np.eye(4)
    for qi, (d, a, al) in zip(q, rows, strict=True):
        c, s, ca, sa = np.cos(qi), np.sin(qi), np.cos(al), np.sin(al)
        T = T @ np.array([[c, -s * ca, s * sa, a * c], [s, c * ca, -c * sa, a * s], [0, sa, ca, d], [0, 0, 0, 1]])
    return T


def test_ur5e_flange_matches_universal_robots_standard_dh():
    """The ur5e file's modified-DH rows reproduce UR's published standard-DH forward kinematics."""
    emb = load("ur5e")
    ur = [
        (0.1625, 0, np.pi / 2),
        (0, -0.425, 0),
        (0, -0.3922, 0),
        (0.1333, 0, np.pi / 2),
        (0.0997, 0, -np.pi / 2),
        (0.0996, 0, 0),
    ]
    m = robot_only(emb)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-2.5, 0.0, 6)
        d.qpos[:6] = q
        mujoco.mj_kinematics(m, d)
        want = _standard_dh(q, ur)
        # the hand body sits on the flange, turned by mount_yaw (0 for ur5e)
        np.testing.assert_allclose(d.body("hand").xpos, want[:3, 3], atol=1e-6)
        np.testing.assert_allclose(d.body("hand").xmat.reshape(3, 3), want[:3, :3], atol=1e-6)


def test_dh_row_with_a_theta_offset_is_rx_tx_rz_tz():
    from synth.robot import dh_offset

    a, alpha, d, theta = 0.25, -1.2, 0.13, 0.7
    pos, quat = dh_offset(a, alpha, d, theta)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, quat)
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    Rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    Rz = np.array([[ct, -st, 0], [st, ct, 0], [0, 0, 1]])
    np.testing.assert_allclose(R.reshape(3, 3), Rx @ Rz, atol=1e-12)
    np.testing.assert_allclose(pos, np.array([a, 0, 0]) + Rx @ Rz @ np.array([0, 0, d]), atol=1e-12)


def _screw_fk(q, screws, home):
    """Product of exponentials: exp([S1] q1) ... exp([Sn] qn) M, screws (n, 6) as (w, v) in the base frame."""
    T = np.eye(4)
    for qi, s in zip(q, screws, strict=True):
        w, v = s[:3], s[3:]
        W = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        R = np.eye(3) + np.sin(qi) * W + (1 - np.cos(qi)) * W @ W
        p = (np.eye(3) * qi + (1 - np.cos(qi)) * W + (qi - np.sin(qi)) * W @ W) @ v
        T = T @ np.block([[R, p[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
    return T @ home


def test_widowx250_matches_interbotix_screw_axes():
    """The widowx250 file's modified-DH rows (with constant offsets) reproduce Interbotix's published
    wx250s home configuration M and screw axes: the point between the fingers and the approach axis."""
    emb = load("widowx250")
    screws = np.array(
        [
            [0, 0, 1, 0, 0, 0],
            [0, 1, 0, -0.11065, 0, 0],
            [0, 1, 0, -0.36065, 0, 0.04975],
            [1, 0, 0, 0, 0.36065, 0],
            [0, 1, 0, -0.36065, 0, 0.29975],
            [1, 0, 0, 0, 0.36065, 0],
        ],
        float,
    )
    home = np.eye(4)
    home[:3, 3] = [0.458325, 0.0, 0.36065]  # ee_gripper_link; its x axis points out of the gripper
    m = robot_only(emb)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(emb.lower, emb.upper)
        d.qpos[:6] = q
        mujoco.mj_kinematics(m, d)
        want = _screw_fk(q, screws, home)
        np.testing.assert_allclose(d.site("tcp").xpos, want[:3, 3], atol=1e-4)  # published to 0.1 mm
        np.testing.assert_allclose(d.site("tcp").xmat.reshape(3, 3)[:, 2], want[:3, 0], atol=1e-6)


@pytest.mark.parametrize("name", names())
def test_ik_model_is_in_the_base_frame(name):
    """IK solves in each arm's base frame even when the arm stands off the origin (widowx250) or turned
    (each arm of aloha): the scene's TCP, taken into that frame, is the robot-only model's."""
    from synth.actions import in_base
    from synth.tabletop.compiler import Layout, build
    from synth.types import Obj, Scene

    emb = load(name)
    scene = Scene(objects=(Obj(name="obj0"),))
    world = build(scene, emb, 1)
    dw = mujoco.MjData(world)
    lay = Layout(world, emb)
    q = np.random.default_rng(0).uniform(emb.lower, emb.upper) * 0.5
    dw.qpos[lay.arm_qadr] = q
    mujoco.mj_kinematics(world, dw)
    k = 0
    for arm, m in zip(lay.arms, emb.mounts, strict=True):
        alone = robot_only(m.body)
        dr = mujoco.MjData(alone)
        dr.qpos[: m.body.dof] = q[k : k + m.body.dof]
        k += m.body.dof
        mujoco.mj_kinematics(alone, dr)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, dw.site(arm.tcp).xmat)
        got = in_base(dw.site(arm.tcp).xpos[None], quat[None], arm.base, arm.yaw)[0]
        want = np.empty(4)
        mujoco.mju_mat2Quat(want, dr.site("tcp").xmat)
        np.testing.assert_allclose(got[:3], dr.site("tcp").xpos, atol=1e-9)
        assert abs(abs(got[3:] @ want) - 1) < 1e-9


VX300S_SCREWS = np.array(  # Interbotix vx300s (modern_robotics model): (w, v) per joint in the base frame
    [
        [0, 0, 1, 0, 0, 0],
        [0, 1, 0, -0.12705, 0, 0],
        [0, 1, 0, -0.42705, 0, 0.05955],
        [1, 0, 0, 0, 0.42705, 0],
        [0, 1, 0, -0.42705, 0, 0.35955],
        [1, 0, 0, 0, 0.42705, 0],
    ],
    float,
)


def test_viperx300_matches_interbotix_screw_axes():
    """The viperx300 file's modified-DH rows (with constant offsets) reproduce Interbotix's published vx300s
    home configuration M and screw axes: the point between the fingers and the approach axis."""
    emb = load("viperx300")
    home = np.eye(4)
    home[:3, 3] = [0.536494, 0.0, 0.42705]  # ee_gripper_link; its x axis points out of the gripper
    m = robot_only(emb)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(emb.lower, emb.upper)
        d.qpos[:6] = q
        mujoco.mj_kinematics(m, d)
        want = _screw_fk(q, VX300S_SCREWS, home)
        np.testing.assert_allclose(d.site("tcp").xpos, want[:3, 3], atol=1e-6)
        np.testing.assert_allclose(d.site("tcp").xmat.reshape(3, 3)[:, 2], want[:3, 0], atol=1e-6)


def test_aloha_is_two_viperx300_facing_each_other():
    """Each arm of the pair is the viperx300 file at its own mount; the card gives the 14-number layout."""
    emb, arm = load("aloha"), load("viperx300")
    assert [m.prefix for m in emb.mounts] == ["left_", "right_"] and all(m.body == arm for m in emb.mounts)
    assert emb.dof == 12 and len(emb.action_names) == 14 and list(emb.gripper_columns) == [6, 13]
    np.testing.assert_allclose(emb.start, np.r_[arm.home, arm.gripper.stroke, arm.home, arm.gripper.stroke])
    card = emb.card(50.0, cameras=("front",))
    assert card["action"]["names"][6] == "left_gripper" and card["action"]["names"][-1] == "right_gripper"
    assert [a["action_columns"] for a in card["arms"]] == [list(range(7)), list(range(7, 14))]
    left, right = emb.mounts
    assert left.base_pos[1] > 0 > right.base_pos[1], "left_ stands at +y"
    # facing each other: each arm's x axis points at the other's base
    for me, other in ((left, right), (right, left)):
        towards = np.subtract(other.base_pos, me.base_pos)[:2]
        assert np.dot([np.cos(me.base_yaw), np.sin(me.base_yaw)], towards / np.linalg.norm(towards)) > 0.99


@pytest.mark.parametrize("name", ["panda", "aloha"])
def test_every_base_stands_where_its_pose_says(name):
    """Mount.base_pose is the one source of a base's world pose: a scene moved by a base offset (robot_base) puts
    every arm's base body there, and the moved embodiment (what the planners see) has the same poses."""
    from synth.pose import yaw_quat
    from synth.tabletop.compiler import build
    from synth.types import Obj, Scene

    emb, offset = load(name), (0.02, -0.03, 0.05)
    d = mujoco.MjData(build(Scene(objects=(Obj(name="obj0"),), base=offset), emb, 1))
    mujoco.mj_kinematics(d.model, d)
    for m, moved in zip(emb.mounts, emb.moved(offset).mounts, strict=True):
        pos, yaw = m.base_pose(offset)
        body = d.body(f"{m.prefix}base")
        assert np.allclose(body.xpos, pos) and np.allclose(body.xquat, yaw_quat(yaw))
        assert np.allclose(moved.base_pose()[0], pos)
        assert moved.base_yaw == (yaw if emb.arms else 0.0)  # a single arm's turn is its IK's (pipeline.TurnedIK)
    assert np.allclose(emb.base_pose(offset)[0], emb.base_pose()[0] + [0.02, -0.03, 0.0])
