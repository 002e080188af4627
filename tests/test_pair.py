"""mode=kinematic on a pair of arms (synth/batch_planner/pair.py, synth/kinematic_pair.py): the plans against
MuJoCo's own contacts (each arm against the world, and arm against arm), the compiled arm-vs-arm check against
its numpy reference, and the geometry the object's path is built from."""

import dataclasses

import mujoco
import numpy as np
import pytest

from synth.batch_planner import pair
from synth.batch_planner.planner import STEP, jit
from synth.config import compose_config, settings
from synth.embodiment import load
from synth.kinematic_mode import along, path_reach
from synth.kinematic_pair import aligning
from synth.planners.collision import Checker
from synth.randomize import apply_many
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.types import Obj

OVERRIDES = ["progress=false", "mode=kinematic", "task=bimanual_lift", "embodiment=aloha"]


def _planned(seed: int, n: int, more=()):
    s = settings(compose_config([*OVERRIDES, f"seed={seed}", *more]))
    emb = load(s.embodiment)
    scenes = [sc for sc, _ in apply_many(list(s.randomizers), s.task.scene(), s.seed, list(range(n)))]
    planner = pair.PairPlanner(s.task, emb, s.control_hz)
    return s, emb, scenes, planner, planner.plan(scenes)


def _blocked(scenes: list) -> list:
    """Every other scene with a tall block beside its bar, across from a point 5 cm from one end: a hand coming
    down there, or either arm passing it, would touch it."""
    out = []
    for k, sc in enumerate(scenes):
        if k % 2:
            bar = sc.objects[0]
            c, s = np.cos(bar.yaw), np.sin(bar.yaw)
            along, across = bar.size[0] - 0.05, bar.size[1] + 0.03
            xy = (bar.xy[0] + along * c - across * s, bar.xy[1] + along * s + across * c)
            block = Obj(name="block", size=(0.015, 0.015, 0.06), xy=(float(xy[0]), float(xy[1])), yaw=bar.yaw)
            sc = dataclasses.replace(sc, objects=(*sc.objects, block))
        out.append(sc)
    return out


def test_pair_plans_are_clear_by_mujocos_own_contacts():
    """Every sample the batched planner checked of every planned segment (each leg of the lift), set on the scene's
    MuJoCo model: no contact within the segment's margin of either arm with the world, nor of one arm with the
    other, nor of the carried object with the world (the touches the script declares allowed, the object riding
    with the first hand while the grippers are closed, as physics mode's checker carries it). Every other scene
    has a block where a hand would come down: a planner that checked nothing fails this."""
    s, emb, scenes, planner, _ = _planned(1, 32, ["randomizers=[object_shape,object_pose,distractors]"])
    scenes = _blocked(scenes)
    plan = planner.plan(scenes)
    script = planner.script
    at = {name: i for i, name in enumerate(planner.keys)}
    assert plan["ok"][::2].sum() >= 12
    checked = 0
    for w in np.flatnonzero(plan["ok"]):
        model = build(scenes[w], emb, 8)
        lay = Layout(model, emb)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies, arms=[a.bodies for a in lay.arms])
        checker.set_state(initial_qpos(model, emb, lay))
        geom, qadr = int(lay.obj_geom[0]), int(lay.obj_qadr[0])
        touch = {"object": [geom], "table": [lay.table_geom], "place": []}
        q = plan["q"][w, 0]
        for seg, carried in zip(script.segments, script.carried(), strict=True):
            if seg.motion == "hold":
                continue
            checker.allow([g for name in seg.touch for g in touch[name]])
            checker.margin(seg.margin)  # the clearance the segment declares, as physics mode's checker keeps it
            if carried:
                checker.attach(geom, qadr, lay.hand_body, q[at[script.grasp_key]])
            for a, b in seg.legs():
                q0, q1 = q[at[a]], q[at[b]]
                n = max(1, int(np.ceil(np.abs(q1 - q0).max() / STEP)))
                for j in range(1, n + 1):
                    assert checker(q0 + j / n * (q1 - q0)), (w, seg.phase, j)
                    checked += 1
            checker.detach()
    assert checked > 500


def test_the_arm_vs_arm_check_finds_mujocos_contacts():
    """Configurations of both arms reaching towards each other over the table: every MuJoCo contact between the
    two arms is found by the sphere covers (they contain the geoms), and what they call clear by more than their
    overshoot MuJoCo calls clear."""
    s, emb, scenes, planner, _ = _planned(2, 1, ["randomizers=[]"])
    model = build(scenes[0], emb, 4)
    lay = Layout(model, emb)
    data = mujoco.MjData(model)
    data.qpos[:] = initial_qpos(model, emb, lay)
    rng = np.random.default_rng(0)
    N = 400
    q = np.clip(np.array(emb.home) + rng.normal(0, 0.6, (N, emb.dof)), emb.lower, emb.upper)
    for arm in planner.arms:
        q[:, arm.cols.start + 1] = rng.uniform(0.2, 1.2, N)  # lean over the table, towards the other arm
    width = np.tile(planner.stroke, (N, 1))
    clear = pair.between(planner.arms, q, q, np.ones(N, np.int64), width, 0.0)  # one sample: q itself
    bodies = [np.flatnonzero(np.isin(model.geom_bodyid, a.bodies)) for a in lay.arms]
    hits = 0
    for k in range(N):
        data.qpos[lay.arm_qadr] = q[k]
        mujoco.mj_forward(model, data)
        hit = any(
            c.dist < 0 and ({c.geom1, c.geom2} & set(bodies[0])) and ({c.geom1, c.geom2} & set(bodies[1]))
            for c in data.contact[: data.ncon]
        )
        hits += hit
        if hit:
            assert clear[k] < 0, (k, clear[k])
        if clear[k] > 0.04:
            assert not hit
    assert hits >= 5  # the sample really brings the arms together


@pytest.mark.skipif(not jit(), reason="numba not installed")
def test_compiled_arm_vs_arm_check_equals_the_numpy_reference():
    from synth.batch_planner import pair_jit

    s, emb, scenes, planner, plan = _planned(3, 16)
    rng = np.random.default_rng(1)
    q0 = np.clip(np.array(emb.home) + rng.normal(0, 0.5, (64, emb.dof)), emb.lower, emb.upper)
    q1 = np.clip(q0 + rng.normal(0, 0.4, q0.shape), emb.lower, emb.upper)
    n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / STEP)).astype(np.int64)
    width = rng.uniform(0.0, 0.074, (64, 2))
    for margin in (0.0, 0.05):
        ref = pair.between(planner.arms, q0, q1, n, width, margin)
        got = pair_jit.between(planner.arms, q0, q1, n, width, margin)
        below = ref < 0
        np.testing.assert_allclose(got[below], ref[below], atol=1e-12)  # exact where it matters
        assert np.array_equal(got < 0, below)


def test_the_object_turns_with_the_line_between_the_hands():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(50, 3))
    v = rng.normal(size=(50, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    R = aligning(u, v)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, u), v, atol=1e-9)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    np.testing.assert_allclose(aligning(u, u), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_a_segment_through_via_keys_runs_along_its_polyline():
    """The timeline's path through via keys: its speed bound is a single leg's displacement for a straight path,
    and the points at shares of its length lie on the legs, reaching each key at its share."""
    p = np.array([[[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]])  # legs of length 1 and 2
    np.testing.assert_allclose(path_reach(np.array([[[0.0, 0.0], [0.3, -0.4]]])), [[0.3, 0.4]])
    np.testing.assert_allclose(path_reach(p), [[3.0, 3.0]])  # 3 long, each joint at most all of a leg's length
    s = np.array([0.0, 1 / 6, 1 / 3, 2 / 3, 1.0])
    got = along(np.repeat(p, len(s), 0), s)
    np.testing.assert_allclose(got, [[0, 0], [0.5, 0], [1, 0], [1, 1], [1, 2]], atol=1e-12)
