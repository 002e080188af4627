"""PyBullet backend against MuJoCo CPU (the reference): every task's scene, a real pick-and-place, per-world
parameters, the `backend=` key."""

import subprocess
import sys

import mujoco
import numpy as np
import pytest

pytest.importorskip("pybullet")

from synth.backends.mujoco_cpu import MujocoCPU, initial_state  # noqa: E402
from synth.backends.pybullet import PyBullet, World  # noqa: E402
from synth.embodiment import load  # noqa: E402
from synth.errors import ConfigError  # noqa: E402
from synth.pipeline import Worker  # noqa: E402
from synth.randomize import apply, slots  # noqa: E402
from synth.registry import RANDOMIZERS, TASKS, load_plugins  # noqa: E402
from synth.tabletop.compiler import Layout, build, initial_qpos  # noqa: E402

load_plugins()
RANDS = ("object_shape", "object_pose", "target", "distractors", "object_physics", "drawer")


def _models(task: str, seed: int, n: int, rands=RANDS, emb: str = "panda") -> tuple[list, Worker]:
    w = Worker(TASKS.build(task, {}), [RANDOMIZERS.build(r, {}) for r in rands], load(emb), seed)
    models = []
    for i in range(n):
        scene, _ = apply(w.randomizers, w.task.scene(), seed, i)
        models.append(build(scene, w.emb, slots(w.task.scene(), w.randomizers)))
    return models, w


def same_frames(sens: np.ndarray, ref: np.ndarray, lay: Layout, atol: float = 1e-6) -> None:
    """Frame sensors equal; quaternions up to sign (q and -q are one rotation)."""
    for name, sl in lay.sensor.items():
        a, b = sens[..., sl], ref[..., sl]
        if name.endswith("quat"):
            a = a * np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -1, 1)
        np.testing.assert_allclose(a, b, atol=atol, err_msg=name)


@pytest.mark.parametrize("task", sorted(TASKS.names()))
def test_every_task_scene_loads_and_steps_like_mujoco(task):
    """Held at home for 0.2 s: finite state, the same sensors at the start (the scene's frames are MuJoCo's),
    and arm, objects (and drawer) where MuJoCo keeps them."""
    models, w = _models(task, seed=5, n=2, emb="panda" if TASKS.get(task).arms == 1 else "aloha")
    lay = Layout(models[0], w.emb)
    state0 = np.stack([initial_state(m, initial_qpos(m, w.emb, lay)) for m in models])
    hold = w.emb.start * w.scale
    ctrl = np.tile(hold, (2, 100, 1))
    ref_state, ref_sens = (x.copy() for x in MujocoCPU().rollout(models, state0, ctrl))
    state, sens = PyBullet().rollout(models, state0, ctrl)
    assert np.isfinite(state).all() and np.isfinite(sens).all()
    np.testing.assert_allclose(state[:, :, 0], ref_state[:, :, 0])  # time
    same_frames(sens[:, 0], ref_sens[:, 0], lay)  # tcp and object frames at the start
    nq = models[0].nq
    q, q_ref = state[:, -1, 1 : 1 + nq], ref_state[:, -1, 1 : 1 + nq]
    assert np.abs(q[:, lay.arm_qadr] - q_ref[:, lay.arm_qadr]).max() < 0.01  # [rad]
    for a in lay.obj_qadr:
        assert np.abs(q[:, a : a + 3] - q_ref[:, a : a + 3]).max() < 0.005  # [m] resting objects stay put
    if lay.drawer_qadr >= 0:
        assert np.abs(q[:, lay.drawer_qadr] - q_ref[:, lay.drawer_qadr]).max() < 0.005


@pytest.mark.parametrize("emb", ["ur5e", "widowx250"])
def test_other_embodiments_load_with_the_same_frames(emb):
    models, w = _models("pick_place", seed=2, n=1, rands=(), emb=emb)
    lay = Layout(models[0], w.emb)
    state0 = initial_state(models[0], initial_qpos(models[0], w.emb, lay))[None]
    ctrl = np.tile(np.r_[w.emb.home, w.emb.gripper.stroke] * w.scale, (1, 50, 1))
    _, ref = MujocoCPU().rollout(models, state0, ctrl)
    ref = ref.copy()
    state, sens = PyBullet().rollout(models, state0, ctrl)
    same_frames(sens[:, 0], ref[:, 0], lay)
    assert np.abs(sens[0, -1, lay.sensor["tcp_pos"]] - ref[0, -1, lay.sensor["tcp_pos"]]).max() < 0.005


def test_pick_place_plans_agree_across_engines():
    """The same plans on both engines: the reach (approach, pre_grasp, grasp) follows the same joint path
    within 0.02 rad and the object stays within 1 cm of MuJoCo's (a pad may brush it as the hand descends),
    and the success labels mostly agree."""
    names = ("object_shape", "object_pose", "target", "distractors", "object_physics")
    rands = [RANDOMIZERS.build(n, {}) for n in names]
    w = Worker(TASKS.build("pick_place", {}), rands, load("panda"), seed=11)
    planned = [a for a in (w.prepare(i) for i in range(6)) if a.plan is not None]
    assert len(planned) >= 5
    labels = {}
    frames = {}
    for be in (MujocoCPU(), PyBullet()):
        w.backend = be
        res = w.execute(planned)
        labels[be.name] = [a.failure for a in planned]
        frames[be.name] = [r["frames"] for r in res]
    lay = Layout(planned[0].model, w.emb)
    reach = [w.task.phases.index(p) for p in ("approach", "pre_grasp", "grasp")]
    for a, fm, fp in zip(planned, frames["mujoco"], frames["pybullet"], strict=True):
        k = np.flatnonzero(np.isin(a.plan.phase, reach))
        assert np.abs(fp.qpos[k][:, lay.arm_qadr] - fm.qpos[k][:, lay.arm_qadr]).max() < 0.02, a.index
        o = lay.obj_qadr[0]
        assert np.abs(fp.qpos[k, o : o + 3] - fm.qpos[k, o : o + 3]).max() < 0.01, a.index
    agree = sum(x == y for x, y in zip(labels["mujoco"], labels["pybullet"], strict=True))
    assert agree >= len(planned) - 1, labels
    assert sum(not f for f in labels["pybullet"]) >= len(planned) - 1, labels


def test_per_world_parameters_are_the_recorded_draws():
    """Each world's PyBullet bodies carry its own draws: object mass and friction, arm gains."""
    rands = [RANDOMIZERS.build(n, {}) for n in ("object_physics", "arm_dynamics")]
    w = Worker(TASKS.build("pick_place", {}), rands, load("panda"), seed=4)
    seen = []
    for i in range(2):
        scene, draws = apply(w.randomizers, w.task.scene(), 4, i)
        m = build(scene, w.emb, w.slots)
        lay = Layout(m, w.emb)
        with World(m, initial_qpos(m, w.emb, lay)) as world:
            b = world.map.bodies[int(m.body("obj0").id)]
            info = world.pb.getDynamicsInfo(b.uid, -1, physicsClientId=world.cid)
            drawn = draws["object_physics"]["objects"][0]
            assert info[0] == pytest.approx(drawn["mass"]) and info[1] == pytest.approx(drawn["friction"])
            (mo,) = [mo for mo in world.motors.values() if len(mo["kp"]) > 2]  # the robot's motors
            kp = mo["kp"][: w.emb.dof]
            gains = draws["arm_dynamics"]["gain"][: w.emb.dof]
            np.testing.assert_allclose(kp, [j.kp * g for j, g in zip(w.emb.joints, gains, strict=True)])
            seen.append((info[0], info[1], *kp))
    assert all(abs(x - y) > 1e-6 for x, y in zip(*seen, strict=True))


def test_diverging_world_is_flagged():
    """A world whose state turns non-finite is NaN from there on, so execute.diverged calls it unstable."""
    from synth.backends.mujoco_cpu import diverged

    models, w = _models("pick_place", seed=1, n=1, rands=())
    lay = Layout(models[0], w.emb)
    state0 = initial_state(models[0], initial_qpos(models[0], w.emb, lay))[None]
    ctrl = np.tile(np.r_[w.emb.home, w.emb.gripper.stroke] * w.scale, (1, 10, 1))
    ctrl[0, 3:] = np.nan
    state, _ = PyBullet().rollout(models, state0, ctrl)
    assert diverged(state, state0, models[0].opt.timestep).all()


def test_unsupported_model_is_refused():
    spec = mujoco.MjSpec()
    b = spec.worldbody.add_body(name="ball_joint_body")
    b.add_joint(type=mujoco.mjtJoint.mjJNT_BALL)
    b.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.1, 0, 0])
    m = spec.compile()
    with pytest.raises(ValueError, match="ball_joint_body"):
        World(m, m.qpos0)


def test_missing_pybullet_is_one_line(monkeypatch):
    from synth.backends import pybullet as backend

    monkeypatch.setitem(sys.modules, "pybullet", None)
    with pytest.raises(ConfigError, match="pip install pybullet"):
        backend.require_pybullet()


def test_generate_on_pybullet_and_bad_backend(tmp_path):
    out = tmp_path / "pb"
    run = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "workers=1", "progress=false", "shard=4"]
    r = subprocess.run([*run, "n=2", "backend=pybullet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2
    assert json.loads((out / "meta" / "synth.json").read_text())["config"]["backend"] == "pybullet"
    r = subprocess.run([*run, "n=2", "backend=bullet"], capture_output=True, text=True)
    assert r.returncode == 2 and "did you mean 'pybullet'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
