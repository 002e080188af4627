import numpy as np
import pytest

from synth import grasps
from synth.embodiment import load
from synth.ik import IK
from synth.planners import transit
from synth.planners.timing import point_to_point, through
from synth.tabletop.objects import sample
from synth.types import Obj

DOWN = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])


@pytest.fixture(scope="module")
def ik():
    return IK(load("panda"))


def test_ik_reaches_poses_within_limits(ik):
    rng = np.random.default_rng(0)
    emb = ik.emb
    for _ in range(20):
        p = np.array([rng.uniform(0.35, 0.65), rng.uniform(-0.25, 0.25), rng.uniform(0.02, 0.25)])
        q = ik.solve(p, DOWN, np.array(emb.home))
        assert q is not None
        pos, rot = ik.fk(q)
        np.testing.assert_allclose(pos, p, atol=1e-3)
        np.testing.assert_allclose(rot, DOWN, atol=1e-2)
        assert np.all(q >= emb.lower - 1e-6) and np.all(q <= emb.upper + 1e-6)


def test_ik_reports_unreachable(ik):
    assert ik.solve(np.array([2.0, 0.0, 0.1]), DOWN, np.array(ik.emb.home)) is None


def test_transit_avoids_an_obstacle_and_is_deterministic():
    lo, hi = np.full(2, -1.0), np.full(2, 1.0)

    def valid(q):
        return not (abs(q[0]) < 0.2 and q[1] > -0.7)

    a, st = transit.plan(np.array([-0.5, 0.5]), np.array([0.5, 0.5]), valid, lo, hi, seed=3)
    b, _ = transit.plan(np.array([-0.5, 0.5]), np.array([0.5, 0.5]), valid, lo, hi, seed=3)
    assert st["rrt"] and a is not None and len(a) >= 3
    np.testing.assert_array_equal(a, b)
    for q0, q1 in zip(a[:-1], a[1:], strict=True):  # every straight piece is clear
        assert all(valid(q0 + s * (q1 - q0)) for s in np.linspace(0, 1, 200))


def test_transit_takes_the_straight_line_when_clear():
    path, st = transit.plan(np.zeros(3), np.ones(3), lambda q: True, -np.ones(3) * 2, np.ones(3) * 2, seed=0)
    assert not st["rrt"] and len(path) == 2


def test_fallbacks_count_the_transits_ompl_planned():
    lo, hi = np.full(2, -1.0), np.full(2, 1.0)

    def valid(q):
        return not (abs(q[0]) < 0.2 and q[1] > -0.7)

    _, blocked = transit.plan(np.array([-0.5, 0.5]), np.array([0.5, 0.5]), valid, lo, hi, seed=3)
    _, clear = transit.plan(np.array([-0.5, -0.9]), np.array([0.5, -0.9]), valid, lo, hi, seed=3)
    stats = {"grasp": "top", "approach": clear, "transit": blocked, "ik_iterations": 7}
    assert transit.fallbacks(stats) == (2, 1)
    assert transit.fallbacks({**stats, "moves": [{"approach": blocked, "transit": clear}]}) == (4, 2)
    assert transit.fallbacks({"grasp": "top"}) == (0, 0)


@pytest.mark.parametrize("fn", [point_to_point, through])
def test_timing_respects_limits_and_ends_at_the_goal(fn):
    vmax, amax, hz = np.full(7, 1.0), np.full(7, 4.0), 20.0
    wp = np.array([np.zeros(7), np.full(7, 0.3), np.r_[np.full(6, 0.6), -0.2]])
    path = wp[[0, 2]] if fn is point_to_point else wp
    q = fn(path[0], path[-1], vmax, amax, hz) if fn is point_to_point else fn(path, vmax, amax, hz)
    np.testing.assert_allclose(q[-1], path[-1])
    v = np.diff(np.vstack([path[0], q]), axis=0) * hz
    assert np.abs(v).max() <= 1.0 * 1.05


def test_point_to_point_is_a_straight_line_in_joint_space():
    q0, q1 = np.zeros(7), np.linspace(-0.5, 0.8, 7)
    q = point_to_point(q0, q1, np.full(7, 1.0), np.full(7, 3.0), 50.0)
    s = (q @ (q1 - q0)) / ((q1 - q0) @ (q1 - q0))
    np.testing.assert_allclose(q, np.outer(s, q1 - q0), atol=1e-6)


@pytest.mark.parametrize("shape", ["box", "cylinder", "sphere", "capsule", "mesh"])
def test_grasps_fit_the_gripper_and_point_into_the_object(shape):
    rng = np.random.default_rng(1)
    for _ in range(10):
        obj = sample(rng, "obj0", shape, "red")
        obj = Obj(**{**obj.__dict__, "xy": (0.5, 0.1), "yaw": float(rng.uniform(-3, 3))})
        cands = grasps.candidates(obj, 0.75, np.zeros(2), max_depth=0.037, max_width=0.068)
        assert cands[0].kind == "top" and cands[0].rot[2, 2] == pytest.approx(-1.0)
        for g in cands:
            assert g.width <= 0.068
            np.testing.assert_allclose(g.rot @ g.rot.T, np.eye(3), atol=1e-9)
            assert g.pos[2] >= 0.75 + 0.006  # fingertips above the table


def test_a_deeper_grasp_goes_below_the_centre_as_far_as_the_table_allows():
    """below: the TCP aims that far under the object's centre, but never brings the fingertips (9 mm past the TCP)
    within 6 mm of the table."""
    table, floor = 0.75, 0.75 + grasps.FINGER_TIP_BELOW_TCP + grasps.TABLE_CLEARANCE
    tall = Obj(name="obj0", shape="cylinder", size=(0.02, 0.04), xy=(0.5, 0.1))  # centre 4 cm up
    short = Obj(name="obj0", shape="box", size=(0.02, 0.02, 0.018), xy=(0.5, 0.1))  # centre 1.8 cm up
    for obj, lowered in ((tall, 0.01), (short, 0.018 + table - floor)):
        at = [grasps.candidates(obj, table, np.zeros(2), 0.1, 0.068, below=b)[0].pos for b in (0.0, 0.01)]
        assert at[0][2] == pytest.approx(table + obj.half_height)
        np.testing.assert_allclose(at[0] - at[1], [0.0, 0.0, lowered], atol=1e-12)
        assert at[1][2] >= floor - 1e-12
