"""Physics backends against MuJoCo C on the CPU, the reference.

Tests that need MuJoCo Warp skip without it. To run them: `pip install -e ".[warp]"`, then
`python -m pytest -q tests/test_backends.py`; they run on Warp's CPU device when there is no GPU. The first
run compiles Warp's kernels (several minutes on 2 cores), cached after under ~/.cache/warp.
"""

import importlib.util

import numpy as np
import pytest

from synth.backends import base
from synth.backends.base import BACKENDS, WORLDS, available, make, world
from synth.backends.mujoco_cpu import MujocoCPU, diverged, initial_state
from synth.config import compose_config, settings
from synth.embodiment import load
from synth.errors import ConfigError
from synth.execute import run, substeps
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames

WARP = available("mujoco_warp")
needs_warp = pytest.mark.skipif(
    not WARP, reason='mujoco_warp is not installed: pip install -e ".[warp]" (kernels compile on first use)'
)
EVERY = [pytest.param(n, marks=[] if available(n) else pytest.mark.skip(reason=f"{n} not installed")) for n in BACKENDS]

# one layout for every world (MuJoCo Warp batches only worlds whose geom types and contact filters agree):
# a box, a tray, no distractors; the other randomizers as generation draws them, plus the arm's dynamics
FIXED = {
    "object_shape": {"shapes": ["box"]},
    "object_pose": {},
    "target": {"kinds": ["tray"]},
    "table": {},
    "lighting": {},
    "object_physics": {},
    "arm_dynamics": {},
}


def _worker(task: str = "pick_place", rands: dict | None = None, seed: int = 0) -> Worker:
    names = rands if rands is not None else {n: {} for n in RANDOMIZERS.names()}
    body = "panda" if TASKS.get(task).arms == 1 else "aloha"  # a two-arm task on the pair
    return Worker(TASKS.build(task), [RANDOMIZERS.build(n, p) for n, p in names.items()], load(body), seed=seed)


def test_make_and_its_one_line_errors(monkeypatch):
    cpu = make("mujoco")
    assert isinstance(cpu, MujocoCPU) and cpu.name == "mujoco"
    with pytest.raises(ConfigError, match="did you mean 'mujoco_warp'"):
        make("mujoco_wrap")
    with pytest.raises(ConfigError, match="unknown backend 'bullet'"):
        settings(compose_config(["backend=bullet"]))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mujoco_warp" else real(n, *a))
    one_line = r'^backend=mujoco_warp needs its optional packages: pip install -e "\.\[warp\]"$'
    with pytest.raises(ConfigError, match=one_line):
        settings(compose_config(["backend=mujoco_warp"]))


def test_default_backend_keeps_the_fingerprint(monkeypatch):
    monkeypatch.setattr(base, "available", lambda name: True)  # the engine's presence does not matter here
    fp = settings(compose_config([])).fingerprint()
    assert "backend" not in fp and fp == settings(compose_config(["backend=mujoco"])).fingerprint()
    warp = settings(compose_config(["backend=mujoco_warp"]))
    assert warp.backend == "mujoco_warp" and warp.fingerprint() == {**fp, "backend": "mujoco_warp"}
    with pytest.raises(ConfigError, match="mode=kinematic runs no physics"):
        settings(compose_config(["backend=mujoco_warp", "mode=kinematic"]))


@pytest.mark.parametrize("backend", [p for p in EVERY if p.values[0] in WORLDS])
def test_one_world_steps_as_the_batch_does(backend, monkeypatch):
    """`world(name, ...)`, the closed loop's engine, stepped under the controls a rollout gets: MuJoCo's matches
    mujoco.rollout exactly, another engine the reference within its tolerance; a backend with no such world (or
    an unknown name) is one line."""
    w = _worker("pick_place", FIXED)
    m = w.prepare(0).model
    lay = Layout(m, w.emb)
    q0 = initial_qpos(m, w.emb, lay)
    ctrl = np.tile(w.emb.start * w.scale, (1, 50, 1))
    ref, _ = MujocoCPU().rollout([m], initial_state(m, q0)[None], ctrl)
    one = world(backend, m, q0)
    try:
        for k in range(ctrl.shape[1]):
            one.step(ctrl[0, k])
    finally:
        one.close()
    qpos = ref[0, -1, 1 : 1 + m.nq]
    if backend == "mujoco":
        np.testing.assert_array_equal(one.qpos, qpos)
        np.testing.assert_array_equal(one.qvel, ref[0, -1, 1 + m.nq : 1 + m.nq + m.nv])
    np.testing.assert_allclose(one.qpos[lay.arm_qadr], qpos[lay.arm_qadr], atol=2e-3)
    monkeypatch.setattr(base, "available", lambda name: True)
    with pytest.raises(ConfigError, match=r"^backend=mujoco_warp cannot step one world"):
        world("mujoco_warp", m, q0)
    with pytest.raises(ConfigError, match="did you mean 'pybullet'"):
        world("bullet", m, q0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", EVERY)
@pytest.mark.parametrize("task", TASKS.names())
def test_every_backend_steps_every_task(task, backend):
    """Two randomized worlds of the task (their own layouts), the arm holding home for 0.5 s: finite states,
    the clock advancing one timestep per step, and the arm where the reference leaves it."""
    w = _worker(task)
    atts = [w.prepare(i) for i in range(2)]
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    qpos0 = np.stack([initial_qpos(m, w.emb, lay) for m in models])
    start = np.tile(w.emb.start, (2, 1))
    acts = np.repeat(start[:, None], 10, axis=1)
    steps = substeps(models[0], 20.0)
    out = run(make(backend), models, qpos0, acts, start, steps, w.scale)
    ref = run(MujocoCPU(), models, qpos0, acts, start, steps, w.scale)
    assert out["qpos"].shape == ref["qpos"].shape and out["sensordata"].shape == ref["sensordata"].shape
    assert np.isfinite(out["qpos"]).all() and np.isfinite(out["sensordata"]).all()
    assert not out["diverged"].any()
    np.testing.assert_allclose(out["qpos"][:, :, lay.arm_qadr], ref["qpos"][:, :, lay.arm_qadr], atol=2e-3)


@pytest.mark.slow
@needs_warp
def test_warp_batches_per_world_parameters_as_drawn():
    """Worlds of one layout share one MuJoCo Warp model whose batched fields hold each world's own draws."""
    from synth.backends.mujoco_warp import MujocoWarp

    w = _worker(rands=FIXED)
    atts = [w.prepare(i) for i in range(3)]
    models = [a.model for a in atts]
    wm = MujocoWarp().put_model(models)
    lay = Layout(models[0], w.emb)
    g, b = lay.obj_geom[0], models[0].geom_bodyid[lay.obj_geom[0]]
    friction, mass = wm.geom_friction.numpy()[:, g, 0], wm.body_mass.numpy()[:, b]
    drawn = [a.draws["object_physics"]["objects"][0] for a in atts]
    np.testing.assert_allclose(friction, [d["friction"] for d in drawn], rtol=1e-6)
    np.testing.assert_allclose(mass, [d["mass"] for d in drawn], rtol=1e-6)
    assert len(set(friction)) == 3 and len(set(mass)) == 3
    arm = models[0].jnt_dofadr[models[0].actuator_trnid[: w.emb.dof, 0]]
    damping, gain = wm.dof_damping.numpy()[:, arm], wm.actuator_gainprm.numpy()[:, : w.emb.dof, 0]
    scale_d = np.array([a.draws["arm_dynamics"]["damping"][: w.emb.dof] for a in atts])
    scale_g = np.array([a.draws["arm_dynamics"]["gain"][: w.emb.dof] for a in atts])
    np.testing.assert_allclose(damping / damping[:1], scale_d / scale_d[:1], rtol=1e-5)  # the embodiment's own cancels
    np.testing.assert_allclose(gain / gain[:1], scale_g / scale_g[:1], rtol=1e-5)
    size = wm.geom_size.numpy()[:, g]
    np.testing.assert_allclose(size, np.stack([m.geom_size[g] for m in models]), rtol=1e-6)
    assert len({tuple(s) for s in size}) == 3
    rgba = wm.geom_rgba.numpy()[:, g]
    np.testing.assert_allclose(rgba, np.stack([m.geom_rgba[g] for m in models]), rtol=1e-6)


def _one_batch(w: Worker, backend, atts) -> tuple[list, list[str]]:
    """All worlds in one rollout call (plans padded with their last action): frames and labels per world."""
    settle = round(w.task.settle * w.ctx.control_hz)
    T = max(len(a.p.actions) for a in atts) + settle
    acts = np.stack([np.concatenate([a.p.actions, np.repeat(a.p.actions[-1:], T, 0)])[:T] for a in atts])
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    qpos0 = np.stack([initial_qpos(m, w.emb, lay) for m in models])
    start = np.tile(np.r_[w.emb.home, w.emb.gripper.stroke], (len(atts), 1))
    out = run(backend, models, qpos0, acts, start, substeps(models[0], 20.0), w.scale)
    frames, labels = [], []
    for k, a in enumerate(atts):
        n = len(a.p.actions) + settle + 1
        fr = Frames(out["qpos"][k, :n], out["qvel"][k, :n], out["sensordata"][k, : n - 1])
        frames.append(fr)
        labels.append("unstable" if out["diverged"][k] else w.task.judge(a.p, fr, lay))
    return frames, labels


@pytest.mark.slow
@needs_warp
def test_warp_matches_mujoco_on_pick_place_plans():
    """The same planned controls on both engines, three worlds in one batch: the same success labels; the
    object's path within 1 cm (MuJoCo Warp runs in float32 and its contact solver differs in detail; measured:
    < 1e-4 m) and the arm's joints within 0.01 rad."""
    from synth.backends.mujoco_warp import MujocoWarp

    w = _worker(rands=FIXED)
    atts = [a for a in (w.prepare(i) for i in range(3)) if a.plan is not None]
    assert len(atts) == 3
    ref, labels = _one_batch(w, MujocoCPU(), atts)
    assert labels.count("") >= 2, labels  # successes to compare, not just failures
    backend = MujocoWarp()
    out, got = _one_batch(w, backend, atts)
    assert backend.groups == [3], "one batch: the worlds share a layout"
    assert got == labels
    lay = Layout(atts[0].model, w.emb)
    obj = slice(lay.obj_qadr[0], lay.obj_qadr[0] + 3)
    for r, o in zip(ref, out, strict=True):
        assert o.qpos.shape == r.qpos.shape
        np.testing.assert_allclose(o.qpos[:, obj], r.qpos[:, obj], atol=0.01)
        np.testing.assert_allclose(o.qpos[:, lay.arm_qadr], r.qpos[:, lay.arm_qadr], atol=0.01)


def _every_case(backend, w: Worker, k: int = 5) -> None:
    """Two randomized pick_place worlds of one layout under their planned controls: rollout(every=k) records the
    every-step rollout's states after steps k-1, 2k-1, ... and its sensors at steps 0, k, ...; MuJoCo C's bitwise."""
    atts = [a for a in (w.prepare(i) for i in range(3)) if a.plan is not None][:2]
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    state0 = np.stack([initial_state(m, initial_qpos(m, w.emb, lay)) for m in models])
    T = min(len(a.p.actions) for a in atts)
    acts = np.stack([a.p.actions[:T] for a in atts])
    from synth.execute import controls

    ctrl = controls(acts, np.tile(w.start, (2, 1)), substeps(models[0], 20.0), w.scale)[:, : 40 * k]
    full_state, full_sens = (x.copy() for x in backend.rollout(models, state0, ctrl))
    state, sens = backend.rollout(models, state0, ctrl, every=k)
    assert state.shape == (2, 40, state0.shape[1]) and sens.shape == (2, 40, models[0].nsensordata)
    assert not np.array_equal(full_state[:, k - 1 :: k], full_state[:, ::k])  # the steps it picks matter
    np.testing.assert_array_equal(state, full_state[:, k - 1 :: k])
    np.testing.assert_array_equal(sens, full_sens[:, ::k])
    with pytest.raises(ValueError, match="whole number"):
        backend.rollout(models, state0, ctrl[:, :-1], every=k)


def test_every_kth_step_is_the_every_step_rollouts():
    _every_case(MujocoCPU(), _worker(rands=FIXED))


def test_a_reset_between_records_still_shows():
    """MuJoCo resets a world whose accelerations turn non-finite (here a NaN control at step 7): with every=5 its
    recorded time falls behind from the record after the reset on, so `diverged` reports it as from every step."""
    w = _worker(rands=FIXED)
    m = w.prepare(0).model
    state0 = initial_state(m, initial_qpos(m, w.emb, Layout(m, w.emb)))[None]
    ctrl = np.tile(w.emb.start * w.scale, (1, 20, 1))
    ctrl[0, 7] = np.nan
    backend = MujocoCPU()
    full = backend.rollout([m], state0, ctrl)[0].copy()
    state = backend.rollout([m], state0, ctrl, every=5)[0]
    assert diverged(full, state0, m.opt.timestep).all() and diverged(state, state0, m.opt.timestep, 5).all()
    assert not diverged(state[:, :1], state0, m.opt.timestep, 5).any()  # the record before the reset is on time


@pytest.mark.slow
@needs_warp
def test_warp_every_kth_step_is_the_every_step_rollouts_and_copies_k_fold_less():
    """MuJoCo Warp records every k-th step on the device: the same arrays as its every-step rollout at those steps,
    and k times fewer bytes copied back."""
    from synth.backends.mujoco_warp import MujocoWarp

    backend = MujocoWarp(chunk=60)  # several chunks, each a whole number of records
    _every_case(backend, _worker(rands=FIXED))
    w = _worker(rands=FIXED)
    atts = [w.prepare(i) for i in range(2)]
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    state0 = np.stack([initial_state(m, initial_qpos(m, w.emb, lay)) for m in models])
    ctrl = np.tile(w.emb.start * w.scale, (2, 200, 1))
    backend.rollout(models, state0, ctrl)
    full = backend.copied
    backend.rollout(models, state0, ctrl, every=5)
    assert 0 < backend.copied < full / 4.9
