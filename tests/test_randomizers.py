"""Every registered randomizer: draws within their ranges, deterministic per (seed, attempt),
different across attempts, JSON-able, and the recorded draw is what the compiled model holds."""

import dataclasses
import json

import mujoco
import numpy as np
import pytest

from synth.embodiment import load
from synth.errors import ConfigError
from synth.randomize import apply, stream
from synth.registry import RANDOMIZERS, TASKS
from synth.scenes.surfaces import TEXTURE_SIZE, image
from synth.scenes.tabletop import build
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


@pytest.mark.parametrize("by", ["colour", "shape"])
def test_sort_scenes_have_two_targets_apart_in_their_class_colours(by):
    """sort's second target: drawn by `target` (recorded under "target1"), compiled as target1_* geoms where
    the draw says, found by Layout, clear of the first target and of every object; by colour each class shares
    one colour, which its target wears; by shape each class shares one shape, and no target has an object's
    colour; clutter never takes a sorted shape (or a task colour)."""
    from synth.randomize import slots
    from synth.scenes.tabletop import Layout

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
