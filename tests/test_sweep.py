"""The kinematic mode's segment check (synth/batch_planner/sweep.py, and its compiled twin sweep_jit.py) against
checking every sample of the segment sphere by sphere; the compiled IK against synth/arm_kinematics.py's."""

import numpy as np
import pytest

from synth import arm_kinematics_jit
from synth.batch_planner import capsules, sweep, sweep_jit
from synth.batch_planner.planner import Planner, targets
from synth.config import compose_config, settings
from synth.embodiment import load
from synth.randomize import apply

EMBODIMENTS = ("panda", "ur5e", "widowx250")


def _problem(name: str, W: int = 48, seed: int = 0):
    """W random straight segments through pick-and-place scenes, leaning down into the workspace."""
    s = settings(compose_config(["progress=false", "randomizers=[object_shape,object_pose,target,distractors]"]))
    scenes = [apply(list(s.randomizers), s.task.scene(), 3, i)[0] for i in range(W)]
    emb = load(name)
    planner = Planner(s.task, emb, 20.0)
    rng = np.random.default_rng(seed)
    q0 = np.clip(np.array(emb.home) + rng.normal(0, 0.4, (W, emb.dof)), emb.lower, emb.upper)
    q1 = np.clip(q0 + rng.normal(0, 0.5, (W, emb.dof)), emb.lower, emb.upper)
    q0[:, 1] = rng.uniform(0.0, 1.2, W)  # lean forward towards the table
    q1[:, 1] = np.clip(q0[:, 1] + rng.uniform(-0.3, 0.9, W), emb.lower[1], emb.upper[1])
    n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / 0.03)).astype(np.int64)
    obs = capsules.obstacles(scenes)
    allowed = rng.random(obs.role.shape) < 0.2
    width = rng.uniform(0.0, emb.gripper.stroke, W)
    return planner, q0, q1, n, obs, allowed, width


def _every_sample(planner: Planner, q0, q1, n, obs, allowed, width, margin):
    """(W,) the smallest clearance over the samples j = 1..n, each placed and checked sphere by sphere."""
    out = np.empty(len(q0))
    for w in range(len(q0)):
        s = np.arange(1, n[w] + 1) / n[w]
        q = q0[w] + s[:, None] * (q1[w] - q0[w])
        frames = capsules._frames(planner.kin.fk(q), planner.base_T)[None]
        one = capsules.Obstacles(*(getattr(obs, f)[w : w + 1] for f in capsules.Obstacles.__dataclass_fields__))
        out[w] = capsules.robot_clearance(planner.body, frames, width[w : w + 1], one, allowed[w : w + 1], margin)[0]
    return out


@pytest.mark.parametrize("name", EMBODIMENTS)
@pytest.mark.parametrize("check", [sweep.segment_clearance, sweep_jit.segment_clearance], ids=["numpy", "numba"])
def test_bisection_gives_the_verdict_and_clearance_of_every_sample(name, check):
    planner, q0, q1, n, obs, allowed, width = _problem(name)
    margin = 0.01
    got = check(planner.kin, planner.body, q0, q1, n, obs, allowed, margin, width)
    truth = _every_sample(planner, q0, q1, n, obs, allowed, width, margin)
    near = truth < margin
    assert 5 <= near.sum() < len(near)  # the sample has collisions, near misses and clear segments
    np.testing.assert_allclose(got[near], truth[near] - margin, rtol=0, atol=1e-12)  # exact below the margin
    assert (got[~near] >= 0).all()  # a lower bound above it


@pytest.mark.parametrize("name", EMBODIMENTS)
def test_compiled_sweep_equals_the_numpy_reference_with_a_carried_object(name):
    planner, q0, q1, n, obs, allowed, width = _problem(name, seed=1)
    rng = np.random.default_rng(2)
    W = len(q0)
    local = np.zeros((W, 5, 3))
    local[:, :, 2] = np.linspace(0.02, 0.08, 5)  # a bar below the hand, along its z
    local[:, :, 0] = rng.uniform(-0.02, 0.02, (W, 1))
    carry = (local, rng.uniform(0.01, 0.03, (W, 5)))
    for margin in (0.003, 0.01, 0.05):
        args = (planner.kin, planner.body, q0, q1, n, obs, allowed, margin, width)
        ref = sweep.segment_clearance(*args, carry)
        got = sweep_jit.segment_clearance(*args, carry)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        assert ((got < 0) == (ref < 0)).all()


@pytest.mark.parametrize("name", EMBODIMENTS)
def test_compiled_ik_equals_the_numpy_reference(name):
    """Key poses of real pick-and-places, each solved from the previous, as the planner does."""
    s = settings(compose_config(["progress=false"]))
    scenes = [apply(list(s.randomizers), s.task.scene(), 3, i)[0] for i in range(64)]
    emb = load(name)
    planner = Planner(s.task, emb, 20.0)
    t = targets(s.task, scenes, emb)
    q_ref = q_jit = np.tile(planner.kin.home, (64, 1))
    converged, K = 0, len(s.task.script().keys)
    for k in range(K):
        q_ref, ok_ref = planner.kin.ik(t.pos[:, 0, k], t.rot[:, 0], q_ref, iters=30)
        q_jit, ok_jit = arm_kinematics_jit.ik(planner.kin, t.pos[:, 0, k], t.rot[:, 0], q_jit, iters=30)
        assert (ok_ref == ok_jit).all()
        np.testing.assert_allclose(q_jit, q_ref, rtol=0, atol=1e-9)
        converged += ok_jit.sum()
    assert converged > 0.8 * 64 * K
    lo, hi = np.asarray(emb.lower), np.asarray(emb.upper)
    assert ((q_jit >= lo) & (q_jit <= hi)).all()


def test_the_planner_falls_back_to_the_numpy_references(monkeypatch):
    s = settings(compose_config(["progress=false"]))
    planner = Planner(s.task, load("panda"), 20.0)
    assert planner.sweep is sweep_jit.segment_clearance and planner.ik.func is arm_kinematics_jit.ik
    monkeypatch.setenv("SYNTH_JIT", "0")
    planner = Planner(s.task, load("panda"), 20.0)
    assert planner.sweep is sweep.segment_clearance and planner.ik == planner.kin.ik


@pytest.mark.parametrize("name", EMBODIMENTS)
def test_compiled_hand_poses_equal_forward_kinematics(name):
    emb = load(name)
    kin = Planner(settings(compose_config(["progress=false"])).task, emb, 20.0).kin
    q = np.random.default_rng(0).uniform(emb.lower, emb.upper, (500, emb.dof))
    ref, got = kin.fk(q, links=False), arm_kinematics_jit.hands(kin, q[:, :])
    np.testing.assert_allclose(got.hand, ref.hand, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.tcp, ref.tcp, rtol=0, atol=1e-12)
    assert got.frames.shape == ref.frames.shape
