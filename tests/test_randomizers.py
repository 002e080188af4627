"""Every registered randomizer: draws within their ranges, deterministic per (seed, attempt),
different across attempts, JSON-able, and the recorded draw is what the compiled model holds."""

import dataclasses
import json
import re

import mujoco
import numpy as np
import pytest

from synth.embodiment import load
from synth.errors import ConfigError
from synth.randomize import apply, stream
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import build
from synth.tabletop.surfaces import TEXTURE_SIZE, image
from synth.types import Texture

EMB = load("panda")


def _scene_with(name):
    """The nominal scene of a task `name` acts on (pick_place; open_drawer for the drawer)."""
    task = TASKS.build("open_drawer" if name == "drawer" else "pick_place")
    r = RANDOMIZERS.build(name)
    return task, r


def _model(scene, slots=4):
    return build(scene, EMB, slots)


def _geom(m, name):
    return m.geom(name)


# name -> check(model, scene, draws) that the compiled model holds the recorded values
APPLIED = {
    "object_shape": lambda m, d: (
        m.geom_type[_geom(m, "obj0").id] == {"box": 6, "cylinder": 5, "sphere": 2, "capsule": 3, "mesh": 7}[d["shape"]]
    ),
    "object_pose": lambda m, d: np.allclose(m.body("obj0").pos[:2], [d["x"], d["y"]]),
    "target": lambda m, d: np.allclose(_geom(m, "target_base").pos[:2], [d["x"], d["y"]]),
    "distractors": lambda m, d: (
        sum(int(m.geom_contype[_geom(m, f"obj{i}").id] > 0) for i in range(1, 4)) == d["count"]
        and all(np.allclose(m.body(f"obj{i + 1}").pos[:2], [o["x"], o["y"]]) for i, o in enumerate(d["objects"]))
    ),
    "table": lambda m, d: (
        np.isclose(_geom(m, "table").pos[2] + _geom(m, "table").size[2], d["height"])
        and np.allclose(_geom(m, "table").size[:2], [d["half_x"], d["half_y"]])
    ),
    "lighting": lambda m, d: (
        np.allclose(
            m.light_diffuse[0], [d["intensity"] * (1 + d["tint"]), d["intensity"], d["intensity"] * (1 - d["tint"])]
        )
        and np.isclose(m.vis.headlight.ambient[0], d["ambient"], atol=1e-6)
    ),
    "camera_jitter": lambda m, d: np.isclose(m.cam_fovy[m.camera("front").id], 50.0 + d["front"]["fovy"]),
    "textures": lambda m, d: (
        all(
            np.array_equal(
                m.tex_data[m.tex_adr[m.texture(f"tex_{s}").id] :][: TEXTURE_SIZE**2 * 3],
                image(Texture(t["pattern"], tuple(t["rgb1"]), tuple(t["rgb2"]), t["cells"], t["seed"])).ravel(),
            )
            and 2 <= t["cells"] <= 10
            for s, t in d.items()
        )
        and m.geom_matid[m.geom("table").id] == m.material("mat_table").id
        and m.geom("wall_back").contype == 0
    ),
    "arm_dynamics": lambda m, d: (
        np.allclose(m.dof_damping[[m.joint(j.name).dofadr[0] for j in EMB.joints]], d["damping"][: EMB.dof])
        and np.allclose(
            m.actuator_gainprm[: EMB.dof, 0], [j.kp * g for j, g in zip(EMB.joints, d["gain"], strict=False)]
        )
    ),
    "drawer": lambda m, d: (
        np.allclose(m.body("cabinet").pos[:2], [d["x"], d["y"]])
        and np.allclose(m.body("cabinet").quat, [np.cos(d["heading"] / 2), 0, 0, np.sin(d["heading"] / 2)])
        and np.allclose(m.jnt_range[m.joint("drawer").id], [0, d["travel"]])
        and np.isclose(m.numeric("drawer_opening").data[0], d["opening"])
        and np.isclose(m.dof_damping[m.joint("drawer").dofadr[0]], d["damping"])
        and np.isclose(m.dof_frictionloss[m.joint("drawer").dofadr[0]], d["friction"])
        and np.allclose(m.geom("cabinet_top").size[:2], [d["depth"], d["width"]])
        and np.isclose(m.geom("cabinet_left").size[2], d["height"])
    ),
    "lights": lambda m, d: (
        m.nlight == 3
        and int(m.light_active.sum()) == d["count"]
        and all(np.allclose(m.light_pos[k + 1], f["pos"]) for k, f in enumerate(d["fill"]))
    ),
    "robot_base": lambda m, d: (
        np.allclose(m.body("base").pos, [d["x"], d["y"], 0.75])
        and np.allclose(m.body("base").quat, [np.cos(d["yaw"] / 2), 0, 0, np.sin(d["yaw"] / 2)])
        and np.allclose(m.geom("pedestal").pos[:2], [d["x"], d["y"]])
    ),
    "restitution": lambda m, d: (
        all(np.allclose(m.geom_solref[_geom(m, o["object"]).id], [0.02, o["dampratio"]]) for o in d["objects"])
        and np.allclose(m.geom_solref[_geom(m, "table").id], [0.02, d["table"]["dampratio"]])
        and np.allclose(m.geom_solref[_geom(m, "pad_left").id], [0.02, 1.0])
    ),
    "object_physics": lambda m, d: all(
        np.isclose(m.geom_friction[_geom(m, o["object"]).id][0], o["friction"])
        and np.isclose(m.body(o["object"]).mass[0], o["mass"])
        for o in d["objects"]
    ),
}


def _ranges(r):
    return {
        f.name: getattr(r, f.name)
        for f in dataclasses.fields(r)
        if isinstance(getattr(r, f.name), tuple)
        and len(getattr(r, f.name)) == 2
        and all(isinstance(x, int | float) for x in getattr(r, f.name))
    }


@pytest.mark.parametrize("name", RANDOMIZERS.names())
def test_randomizer_bounds_determinism_and_record(name):
    task, r = _scene_with(name)
    seen = []
    for attempt in range(12):
        scene, draws = apply([r], task.scene(), seed=7, attempt=attempt)
        again, draws2 = apply([r], task.scene(), seed=7, attempt=attempt)
        assert draws == draws2 and scene == again, "not deterministic"
        json.dumps(draws)  # recordable
        d = draws[name]
        for key, (lo, hi) in _ranges(r).items():
            if key in d and isinstance(d[key], int | float):
                upper = hi if not (name == "target" and key == "half_size") else max(hi, d[key])
                assert lo - 1e-12 <= d[key] <= upper + 1e-12, (key, d[key], lo, hi)
        m = _model(scene)
        if name in APPLIED:
            assert APPLIED[name](m, d), f"{name}: the model does not hold the recorded draw {d}"
        seen.append(json.dumps(d, sort_keys=True))
    assert len(set(seen)) > 1, "every attempt drew the same"


def test_streams_are_independent_of_other_randomizers():
    task = TASKS.build("pick_place")
    light = RANDOMIZERS.build("lighting")
    _, alone = apply([light], task.scene(), 3, 5)
    _, together = apply([RANDOMIZERS.build(n) for n in RANDOMIZERS.names()], task.scene(), 3, 5)
    assert alone["lighting"] == together["lighting"]
    assert stream(3, 5, "x").random() != stream(3, 6, "x").random()


def test_all_randomizers_together_give_valid_scenes():
    task = TASKS.build("pick_place")
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names()]
    for attempt in range(20):
        scene, _ = apply(rs, task.scene(), 0, attempt)
        m = _model(scene)
        d = mujoco.MjData(m)
        mujoco.mj_forward(m, d)
        act = [o for o in scene.objects if o.active]
        for i, a in enumerate(act):  # objects never overlap at the start
            for b in act[i + 1 :]:
                assert np.linalg.norm(np.subtract(a.xy, b.xy)) >= a.footprint + b.footprint


def test_bad_range_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"randomizers.lighting.intensity: low 0.9 > high 0.2"):
        RANDOMIZERS.build("lighting", {"intensity": [0.9, 0.2]})
    with pytest.raises(ConfigError, match="has no key 'intensty'.*did you mean 'intensity'"):
        RANDOMIZERS.build("lighting", {"intensty": [0.1, 0.2]})


def test_every_task_object_is_randomized_and_clutter_comes_after():
    """stack has two task objects: both get drawn poses and shapes (distinct colours, recorded under obj1),
    distractors are added after them, and a task without a place target keeps none."""
    from synth.randomize import slots

    task = TASKS.build("stack")
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names()]
    for attempt in range(12):
        scene, draws = apply(rs, task.scene(), 0, attempt)
        a, b = scene.objects[:2]
        assert a.colour != b.colour and a.shape == b.shape == "box"
        assert draws["object_pose"]["obj1"]["x"] == b.xy[0] and draws["object_shape"]["obj1"]["colour"] == b.colour
        assert scene.target.kind == "none" and draws["target"] == {"kind": "none"}
        m = build(scene, EMB, slots(task.scene(), rs))
        assert np.allclose(m.body("obj1").pos[:2], b.xy)
        assert all(not np.any(m.geom_rgba[m.geom(f"target_{p}").id][3]) for p in ("base", "wall0"))
        for i, o in enumerate(draws["distractors"]["objects"]):
            assert np.allclose(m.body(f"obj{i + 2}").pos[:2], [o["x"], o["y"]])
            assert o["colour"] not in (a.colour, b.colour)


def test_state_noise_is_on_the_written_state_only():
    """With state_noise, the written state differs from the noise-free one by noise of the recorded size;
    the actions are the same and the noise is reproducible."""
    from synth.pipeline import Worker

    task = TASKS.build("pick_place")
    base = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    noisy = base + [RANDOMIZERS.build("state_noise", {"joints": [0.01, 0.02], "gripper": [0.001, 0.002]})]
    clean_eps, _ = Worker(task, base, EMB, seed=3).block([0, 1])
    noisy_eps, _ = Worker(task, noisy, EMB, seed=3).block([0, 1])
    again, _ = Worker(task, noisy, EMB, seed=3).block([0, 1])
    for c, n, a in zip(clean_eps, noisy_eps, again, strict=True):
        np.testing.assert_array_equal(c.action, n.action)
        np.testing.assert_array_equal(n.state, a.state)
        d = n.meta["draws"]["state_noise"]
        err = n.state - c.state
        assert 0.6 * d["joints"] < err[:, : EMB.dof].std() < 1.4 * d["joints"]
        assert 0.6 * d["gripper"] < err[:, -1].std() < 1.4 * d["gripper"]


# ------------------------------------------------------------------ lights, robot_base, restitution, action_noise


def test_lights_add_fill_lights_beside_the_key_light():
    """lighting draws the key light, lights adds fill lights around the table; the model always holds count[1]
    lights (unused ones off); the key light is the same whether lights is on or not."""
    task = TASKS.build("pick_place")
    key, fill = RANDOMIZERS.build("lighting"), RANDOMIZERS.build("lights", {"count": [1, 4]})
    counts = set()
    for attempt in range(16):
        alone, _ = apply([key], task.scene(), 2, attempt)
        scene, draws = apply([key, fill], task.scene(), 2, attempt)
        assert scene.lights[0] == alone.lights[0]
        m = _model(scene)
        d = draws["lights"]
        counts.add(d["count"])
        assert m.nlight == 4 and int(m.light_active.sum()) == d["count"] == len(d["fill"]) + 1
        for k, f in enumerate(d["fill"], start=1):
            assert np.allclose(m.light_pos[k], f["pos"]) and m.light_active[k]
            assert m.light_type[k] == {"spot": 0, "point": 2}[f["kind"]]
            aim = np.array([scene.table.centre[0], scene.table.centre[1], scene.table.height]) - m.light_pos[k]
            assert np.allclose(m.light_dir[k], aim / np.linalg.norm(aim))
            assert f["kind"] == "point" or np.isclose(m.light_cutoff[k], f["cutoff"])
            assert 0.4 <= np.linalg.norm(aim[:2]) <= 1.2 and 0.5 <= -aim[2] <= 1.4
    assert counts == {1, 2, 3, 4}
    with pytest.raises(ConfigError, match="randomizers.lights.count"):
        RANDOMIZERS.build("lights", {"count": [0, 2]})


def _drop(e: float, h0: float = 0.1) -> float:
    """Rebound speed / impact speed of a ball dropped h0 [m] onto the table, both of restitution e."""
    from dataclasses import replace

    from synth.tabletop.compiler import Layout, initial_qpos
    from synth.types import Obj, Scene

    scene = Scene(objects=(Obj("obj0", "sphere", (0.03, 0, 0), xy=(0.5, 0.2), restitution=e),))
    m = build(scene.replace(table=replace(scene.table, restitution=e)), EMB, 1)
    lay = Layout(m, EMB)
    d = mujoco.MjData(m)
    d.qpos[:] = initial_qpos(m, EMB, lay)
    d.ctrl[:] = np.r_[EMB.home, EMB.gripper.stroke / 2]
    d.qpos[lay.obj_qadr[0] + 2] += h0
    vz = []
    for _ in range(int(0.6 / m.opt.timestep)):
        mujoco.mj_step(m, d)
        vz.append(d.qvel[lay.obj_dadr[0] + 2])
    vz = np.array(vz)
    hit = int(np.argmax(vz > 0))  # the first step moving up: the bounce (0 if it never leaves)
    return float(vz[hit:].max() / -vz[:hit].min()) if hit else 0.0


def test_restitution_makes_a_dropped_ball_bounce_as_recorded():
    """MuJoCo has no restitution: the randomizer's coefficient becomes the solref damping ratio. A ball dropped
    on the table rebounds higher the higher the coefficient, at about the coefficient's speed ratio."""
    from synth.tabletop.bodies import dampratio

    ratios = [_drop(e) for e in (0.0, 0.2, 0.45, 0.7)]
    assert ratios[0] < 0.15 and all(a < b for a, b in zip(ratios, ratios[1:], strict=False)), ratios
    for e, r in zip((0.2, 0.45, 0.7), ratios[1:], strict=True):  # soft contacts give back ~0.1 even at e = 0
        assert abs(r - e) < (0.12 if e < 0.4 else 0.08), (e, r)
    assert dampratio(0.0) == 1.0
    for e in (1e-6, 0.1, 0.5, 0.7):  # the damped spring's rebound: e = exp(-pi z / sqrt(1 - z^2))
        z = dampratio(e)
        assert np.isclose(np.exp(-np.pi * z / np.sqrt(1 - z * z)), e)
    with pytest.raises(ConfigError, match=r"randomizers.restitution.objects.*within \[0, 0.7\]"):
        RANDOMIZERS.build("restitution", {"objects": [0.2, 0.9]})


def test_robot_base_moves_the_arm_and_the_robot_frame_with_it():
    """A shifted and turned base: planning still succeeds, and the robot-frame outputs are in the moved base's
    frame: observation.ee_pose and ee_pose actions equal forward kinematics of the joints on the robot alone."""
    from synth.ik import IK
    from synth.pipeline import Worker

    task = TASKS.build("pick_place")
    base = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    shift = {"x": [0.03, 0.03], "y": [-0.03, -0.03], "yaw": [0.08, 0.08]}
    moved = base + [RANDOMIZERS.build("robot_base", shift)]
    eps, _ = Worker(task, moved, EMB, seed=4, action="ee_pose").block([0, 1, 2, 3])
    still, _ = Worker(task, base, EMB, seed=4).block([0, 1, 2, 3])
    assert len(eps) >= 3, "planning around a moved base mostly succeeds"
    ik = IK(EMB)  # the robot alone, its base at the origin: the base frame
    c, s = np.cos(0.08), np.sin(0.08)
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    for e in eps:
        assert e.meta["draws"]["robot_base"] == {"x": 0.03, "y": -0.03, "yaw": 0.08}
        for t in range(0, e.length, 7):
            pos, rot = ik.fk(e.state[t, : EMB.dof].astype(float))
            np.testing.assert_allclose(e.labels["observation.ee_pose"][t, :3], pos, atol=2e-4)
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, rot.ravel())
            assert abs(abs(np.dot(e.labels["observation.ee_pose"][t, 3:], quat)) - 1) < 1e-5
            target, _ = ik.fk(e.labels["synth.joint_target"][t, : EMB.dof].astype(float))
            np.testing.assert_allclose(e.action[t, :3], target, atol=2e-4)
        clean = next(c for c in still if c.attempt == e.attempt)  # the same object, seen from the moved base
        world = clean.labels["synth.object_pose"][0, :3] + [0.0, 0.0, 0.75]
        expect = turn.T @ (world - [0.03, -0.03, 0.75])
        np.testing.assert_allclose(e.labels["synth.object_pose"][0, :3], expect, atol=2e-3)


def test_action_noise_runs_noisy_late_targets_and_writes_the_commanded_ones():
    """The physics runs the commanded targets with the recorded noise, `latency` periods late; the written action
    is the commanded one; the noise comes from the attempt's own stream, whatever the batch size."""
    from synth.backends.mujoco_cpu import MujocoCPU
    from synth.execute import perturb, run, substeps
    from synth.pipeline import Worker
    from synth.tabletop.compiler import Layout, initial_qpos

    task = TASKS.build("pick_place")
    base = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    late = base + [RANDOMIZERS.build("action_noise", {"joints": [0.0, 0.0], "latency": [2, 2]})]
    clean, _ = Worker(task, base, EMB, seed=3).block([0, 1])
    lagged, _ = Worker(task, late, EMB, seed=3).block([0, 1])
    for c, g in zip(clean, lagged, strict=True):
        np.testing.assert_array_equal(c.action, g.action)
        np.testing.assert_allclose(g.state[2:, : EMB.dof], c.state[:-2, : EMB.dof], atol=2e-4)  # two periods late
        assert np.abs(g.state[2:, : EMB.dof] - c.state[2:, : EMB.dof]).max() > 1e-2

    noisy = base + [RANDOMIZERS.build("action_noise", {"joints": [0.01, 0.02], "latency": [0, 1]})]
    one = Worker(task, noisy, EMB, seed=3, batch=1)
    eps, _ = one.block([0, 1, 2])
    again, _ = Worker(task, noisy, EMB, seed=3, batch=16).block([0, 1, 2])
    assert eps, "small noise still leaves successful episodes"
    for e, a in zip(eps, again, strict=True):
        np.testing.assert_array_equal(e.state, a.state)  # independent of the batch
        d = e.meta["draws"]["action_noise"]
        att = one.prepare(e.attempt)
        np.testing.assert_array_equal(e.action, att.p.actions.astype(np.float32))  # the commanded targets
        rng = stream(3, e.attempt, "action_noise")
        ex = perturb(att.p.actions, one.start, EMB.arm_columns, d["joints"], d["latency"], rng)
        k = d["latency"]
        assert len(ex) == e.length + k and np.all(ex[:k] == one.start)
        err = ex[k:] - att.p.actions
        assert 0.8 * d["joints"] < err[:, : EMB.dof].std() < 1.2 * d["joints"] and not err[:, -1].any()
        lay = Layout(att.model, EMB)
        out = run(MujocoCPU(), [att.model], initial_qpos(att.model, EMB, lay)[None], ex[None], one.start[None],
                  substeps(att.model, 20.0), one.scale)  # fmt: skip
        q = out["qpos"][0, : e.length]
        np.testing.assert_array_equal(e.state, np.c_[q[:, lay.arm_qadr], q[:, lay.finger_qadr].sum(1)].astype("f4"))


def test_action_drift_pushes_the_arm_off_its_plan_and_writes_the_plan():
    """DART's disturbance: the physics runs the plan plus a slow offset (none on the gripper, none near a gripper
    change or the end), so the states leave the plan while the written actions stay it; the offset comes from the
    attempt's own stream, whatever the batch; replay runs the same targets."""
    from synth.execute import drift
    from synth.pipeline import Worker

    task = TASKS.build("pick_place")
    base = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    drifting = base + [RANDOMIZERS.build("action_drift", {"joints": [0.02, 0.03]})]
    clean, _ = Worker(task, base, EMB, seed=3).block([0, 1, 2])
    one = Worker(task, drifting, EMB, seed=3, batch=1)
    eps, _ = one.block([0, 1, 2])
    again, _ = Worker(task, drifting, EMB, seed=3, batch=16).block([0, 1, 2])
    assert len(eps) >= 2, "a drift of a few centimetres still leaves successful grasps"
    by = {c.attempt: c for c in clean}
    for e, a in zip(eps, again, strict=True):
        np.testing.assert_array_equal(e.state, a.state)  # independent of the batch
        d = e.meta["draws"]["action_drift"]
        assert 0.02 <= d["joints"] <= 0.03 and d["period"] == 0.5 and d["quiet"] == 0.25
        att = one.prepare(e.attempt)
        np.testing.assert_array_equal(e.action, att.p.actions.astype(np.float32))  # the plan, not what ran
        off = one.executed(att) - att.p.actions
        rng = stream(3, e.attempt, "action_drift")
        want = drift(att.p.actions, EMB.arm_columns, EMB.gripper_columns, d["joints"], 0.5, 0.25, 20.0, rng)
        np.testing.assert_allclose(off, want, rtol=0, atol=1e-12)
        assert not want[:, EMB.gripper_columns].any() and not want[0].any() and not want[-1].any()
        change = np.flatnonzero(np.diff(att.p.actions[:, -1])) + 1
        for c in change:  # on the plan within `quiet` (5 periods) of every gripper change
            assert not want[max(c - 5, 0) : c + 6].any()
        assert 0.3 * d["joints"] < np.abs(want[:, : EMB.dof]).max() / 3 < 2 * d["joints"]
        c = by[e.attempt]  # the same scene and plan without drift: the hand really went elsewhere
        gap = np.linalg.norm(
            e.labels["observation.ee_pose"][:, :3] - c.labels["observation.ee_pose"][: e.length, :3], axis=1
        )
        assert gap.max() > 0.01
    with pytest.raises(ConfigError, match="action_drift"):
        RANDOMIZERS.build("action_drift", {"period": 0.0})


def test_large_action_noise_fails_honestly():
    """Success stays a physics verdict: with large noise some grasps miss, and the failures are physical."""
    from synth.pipeline import Worker

    task = TASKS.build("pick_place")
    rs = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    rs.append(RANDOMIZERS.build("action_noise", {"joints": [0.06, 0.06], "latency": [0, 0]}))
    _, records = Worker(task, rs, EMB, seed=1).block(list(range(8)))
    failed = [r["reason"] for r in records if not r["success"]]
    assert failed and set(failed) <= {"grasp_slip", "dropped", "placed_outside", "not_released", "unstable"}


# ------------------------------------------------------------------ synonyms


def _words(templates) -> set[str]:
    return {w for t in templates for w in re.sub(r"\{\w+\}|[,:;]", " ", t).split()}


def test_synonyms_never_use_a_held_out_word():
    """No replacement is a word that only a task's held-out paraphrases use, so the split stays held out."""
    from synth.randomizers.synonyms import CLASSES, NOUNS, TARGETS

    replacements = {w for alts in CLASSES.values() for p in alts for w in p.split()}
    for name in TASKS.names():
        t = TASKS.build(name)
        only_held = _words(t.held_out_templates) - _words(t.templates)
        assert not replacements & only_held, (name, replacements & only_held)
    object_words = set(NOUNS) | {w for alts in NOUNS.values() for w in alts}
    assert not object_words & ({w for alts in TARGETS.values() for w in alts} | set(TARGETS))


@pytest.mark.parametrize("name", TASKS.names())
def test_synonyms_keep_every_referring_expression_unique(name):
    """With synonyms on (rate 0.8), every task object's phrase is in the instruction, no other active object of
    its colour can be called by its noun word unless the two share a noun (then refer()'s size or place words
    tell them apart), the recorded replacements are the applied ones, and no held-out paraphrase appears."""
    from synth.language import refer, substitute
    from synth.randomizers.synonyms import names
    from synth.tabletop.objects import noun

    task = TASKS.build(name)
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names() if n != "synonyms"]
    rs.append(RANDOMIZERS.build("synonyms", {"rate": 0.8}))
    held = [re.compile(_template_regex(t)) for t in task.held_out_templates]
    changed = 0
    for i in range(40):
        scene, draws = apply(rs, task.scene(), 0, i)
        applied = draws["synonyms"]["words"]
        assert {k: v for k, v in scene.perturb.words if k != v} == applied
        raw = task.instruction(scene, stream(0, i, "instruction"))
        text = substitute(raw, scene.perturb.words)
        changed += text != raw
        for word, new in applied.items():
            if re.search(rf"\b{word}\b", raw):
                assert re.search(rf"\b{new}\b", text), (raw, text, applied)
        assert not any(h.match(text) for h in held), text
        shown = {k: substitute(noun(o), scene.perturb.words) for k, o in enumerate(scene.objects) if o.active}
        for k in range(0 if scene.groups else scene.task_objects):  # sort names classes, not objects
            obj = scene.objects[k]
            assert substitute(refer(scene, k), scene.perturb.words) in text
            for j, o in enumerate(scene.objects):
                if j != k and o.active and o.colour == obj.colour and noun(o) != noun(obj):
                    assert shown[k] not in names(noun(o)) | {shown[j]}, (text, shown)
    assert changed > 30


def _template_regex(template):
    parts = re.split(r"\{\w+\}", template.replace(" {rel}", "{rel}"))
    return "^" + "(.+?)".join(re.escape(p) for p in parts) + "$"


def test_synonyms_keep_a_noun_that_would_name_two_objects():
    """'block' may name a red cube only when no red brick-shaped block is in the scene; the worker writes the
    substituted instruction; a kept phrase ('put away') is left alone."""
    from synth.language import refer, substitute
    from synth.pipeline import Worker
    from synth.types import Obj, Scene

    cube = Obj("obj0", "box", (0.02, 0.02, 0.02), "red", xy=(0.5, 0.1))
    brick = Obj("obj1", "box", (0.04, 0.02, 0.02), "red", xy=(0.5, -0.1))
    syn = RANDOMIZERS.build("synonyms", {"rate": 1.0, "classes": ["cube", "put"]})
    scene, d = syn(Scene(objects=(cube, brick)), np.random.default_rng(0))
    assert d["words"] == {"put": "place"} and d["kept"] == ["cube"]
    scene, d = syn(Scene(objects=(cube, dataclasses.replace(brick, colour="blue"))), np.random.default_rng(0))
    assert d == {"words": {"cube": "block", "put": "place"}, "kept": []}
    said = substitute(f"put the {refer(scene, 0)} next to the {refer(scene, 1)}", scene.perturb.words)
    assert said == "place the red block next to the blue block"
    assert substitute("put away the red cube", scene.perturb.words) == "put away the red block"

    task = TASKS.build("pick_place")
    rs = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    w = Worker(task, [*rs, RANDOMIZERS.build("synonyms", {"rate": 1.0})], EMB, seed=2)
    for i in range(3):
        a = w.prepare(i)
        raw = task.instruction(a.scene, stream(2, i, "instruction"))
        assert a.instruction == substitute(raw, a.scene.perturb.words) != raw


def test_replay_reruns_a_moved_noisy_late_episode(tmp_path):
    """synth view's replay rebuilds the moved base from the record and reruns the same drifting, noisy, late
    targets, so it reproduces the written states; the commanded targets alone do not."""
    import subprocess
    import sys

    from synth.backends.mujoco_cpu import MujocoCPU
    from synth.execute import run, substeps
    from synth.replay import episode_record, replay
    from synth.tabletop.compiler import Layout, initial_qpos

    out = tmp_path / "d"
    rands = (
        "randomizers=[object_shape,object_pose,target,robot_base,restitution,action_noise,action_drift,lights,synonyms]"
    )
    noise = ["randomizers.action_noise.joints=[0.01,0.02]", "randomizers.action_noise.latency=[1,2]"]
    noise += ["randomizers.action_drift.joints=[0.01,0.02]"]
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "n=2", "workers=1", "progress=false"]
    r = subprocess.run([*cmd, rands, *noise], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = replay(out, 1)
    assert (
        rep.meta["draws"]["action_noise"]["latency"] in (1, 2) and rep.meta["draws"]["action_drift"]["joints"] >= 0.01
    )
    assert len(rep.qpos) == len(rep.recorded_state) + 1
    np.testing.assert_allclose(rep.replayed_state, rep.recorded_state, atol=1e-5)
    assert np.allclose(rep.model.body("base").pos[:2], [rep.meta["draws"]["robot_base"][k] for k in "xy"])

    _, commanded, _ = episode_record(out, 1)
    lay, start, scale = Layout(rep.model, EMB), np.r_[EMB.home, EMB.gripper.stroke], np.r_[np.ones(EMB.dof), 0.5]
    q0 = initial_qpos(rep.model, EMB, lay)[None]
    plain = run(MujocoCPU(), [rep.model], q0, commanded[None], start[None], substeps(rep.model, 20.0), scale)
    q = plain["qpos"][0, :-1]
    assert np.abs(q[:, lay.arm_qadr] - rep.recorded_state[:, : EMB.dof]).max() > 1e-3


@pytest.mark.parametrize("by", ["colour", "shape"])
def test_sort_scenes_have_two_targets_apart_in_their_class_colours(by):
    """sort's second target: drawn by `target` (recorded under "target1"), compiled as target1_* geoms where
    the draw says, found by Layout, clear of the first target and of every object; by colour each class shares
    one colour, which its target wears; by shape each class shares one shape, and no target has an object's
    colour; clutter never takes a sorted shape (or a task colour)."""
    from synth.randomize import slots
    from synth.tabletop.compiler import Layout

    task = TASKS.build("sort", {"by": by})
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names()]
    for attempt in range(12):
        scene, draws = apply(rs, task.scene(), 0, attempt)
        a, b = scene.all_targets
        d1 = draws["target"]["target1"]
        assert (d1["x"], d1["y"], d1["half_size"], d1["colour"], d1["kind"]) == (*b.pos, b.size[0], b.colour, b.kind)
        m = build(scene, EMB, slots(task.scene(), rs))
        assert np.allclose(m.geom("target1_base").pos[:2], b.pos) and np.allclose(m.geom("target_base").pos[:2], a.pos)
        lay = Layout(m, EMB)
        assert [len(g) for g in lay.targets_geoms] == [5, 5] and m.geom(
            int(lay.targets_geoms[1][0])
        ).name == "target1_base"
        assert np.max(np.abs(np.subtract(a.pos, b.pos)) - np.add(a.size, b.size)) > 0.012  # outlines and walls apart
        for tg in (a, b):
            for o in scene.objects:
                if o.active:  # no object starts on a target
                    assert np.linalg.norm(np.maximum(np.abs(np.subtract(o.xy, tg.pos)) - tg.size, 0)) >= o.footprint
        task_objs = scene.objects[: scene.task_objects]
        clutter = [o for o in scene.objects[scene.task_objects :] if o.active]
        for k, tg in enumerate((a, b)):
            mine = [o for o, g in zip(task_objs, scene.groups, strict=True) if g == k]
            theirs = [o for o, g in zip(task_objs, scene.groups, strict=True) if g != k]
            if by == "colour":
                assert {o.colour for o in mine} == {tg.colour} and tg.colour not in {o.colour for o in theirs}
            else:
                assert len({o.shape for o in mine}) == 1 and not {o.shape for o in mine} & {o.shape for o in theirs}
                assert tg.colour not in {o.colour for o in task_objs}
        assert a.colour != b.colour
        assert not {o.colour for o in clutter} & {o.colour for o in task_objs}
        if by == "shape":
            assert not {o.shape for o in clutter} & {o.shape for o in task_objs}


def test_latency_shifts_the_frames_the_judge_reads():
    """With a control latency the plan's frame k happens at physics frame k + latency; the judge reads it there,
    so a late but otherwise exact execution at a low control rate is judged like the plan-free outcome."""
    from synth.embodiment import load as load_emb
    from synth.pipeline import Worker

    rands = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    rands.append(RANDOMIZERS.build("action_noise", {"joints": [0.0, 0.0], "latency": [2, 2]}))
    w = Worker(TASKS.build("pick_place"), rands, load_emb("panda"), seed=0, control_hz=5.0)
    atts = [a for a in (w.prepare(i) for i in range(4)) if a.plan is not None]
    res = w.execute(atts)
    judged = [a.failure for a in atts]
    outcome = [w.task.outcome(a.scene, r["frames"], r["layout"]) for a, r in zip(atts, res, strict=True)]
    assert judged == outcome and judged.count("") >= len(atts) - 1, (judged, outcome)
