"""Concave objects: the procedural cup (exact convex parts) and concave mesh files (coacd parts) collide as
the shape they are, not as their hull; planning and grasping handle their several geoms."""

import mujoco
import numpy as np
import pytest
import trimesh

from synth.embodiment import load
from synth.planners.collision import Checker
from synth.tabletop import objects
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.types import Obj, Scene

EMB = load("panda")


def _cup(seed=0):
    return objects.sample(np.random.default_rng(seed), "obj0", "cup", "red", mass=0.1)


def test_cup_is_hollow_in_the_physics():
    """A marble dropped over a cup ends inside it, below its rim; over its convex hull it would sit on top."""
    cup = _cup()
    marble = Obj(name="obj1", shape="sphere", size=(0.008, 0, 0), colour="blue", xy=(0.5, 0.0), mass=0.01)
    scene = Scene(objects=(cup, marble), task_objects=1)
    m = build(scene, EMB, 2)
    assert objects.noun(cup) == "cup" and len(cup.parts) == objects.CUP_SEGMENTS + 1
    assert sum(m.geom_bodyid == m.body("obj0").id) == len(cup.parts)
    assert m.body("obj0").mass[0] == pytest.approx(cup.mass)
    d = mujoco.MjData(m)
    lay = Layout(m, EMB)
    d.qpos[:] = initial_qpos(m, EMB, lay)
    top = 0.75 + 2 * cup.size[2]
    d.qpos[lay.obj_qadr[1] : lay.obj_qadr[1] + 3] = [0.5, 0.0, top + 0.03]  # above the cup's mouth
    mujoco.mj_forward(m, d)
    for _ in range(1000):
        mujoco.mj_step(m, d)
    z = d.qpos[lay.obj_qadr[1] + 2]
    assert z < top - 0.01, (z, top)  # inside, well below the rim
    assert z > 0.75 + objects.CUP_BASE  # and on the cup's base, not through it


def _l_prism(path, a=0.06, b=0.02, h=0.03):
    """An L-shaped prism (concave, closed) written as an .obj file."""
    P = np.array([(0, 0), (a, 0), (a, b), (b, b), (b, a), (0, a)], float)
    n = len(P)
    V = np.vstack([np.c_[P, np.zeros(n)], np.c_[P, np.full(n, h)]])
    F = []
    for q0, q1, q2, q3 in ((0, 1, 2, 3), (0, 3, 4, 5)):
        F += [(q0, q2, q1), (q0, q3, q2), (q0 + n, q1 + n, q2 + n), (q0 + n, q2 + n, q3 + n)]
    for i in range(n):
        j = (i + 1) % n
        F += [(i, j, j + n), (i, j + n, i + n)]
    mesh = trimesh.Trimesh(V, F, process=True)
    assert mesh.is_watertight
    mesh.export(path)


def test_concave_mesh_file_is_decomposed_and_a_convex_one_is_not(tmp_path):
    pytest.importorskip("coacd")
    _l_prism(tmp_path / "l.obj")
    trimesh.creation.box([0.04, 0.03, 0.02]).export(tmp_path / "box.obj")
    parts = objects.load_parts(str(tmp_path / "l.obj"))
    assert len(parts) >= 2 and objects.load_parts(str(tmp_path / "box.obj")) == ()
    hull = objects.load_mesh(str(tmp_path / "l.obj"))
    lo, hi = hull.min(0), hull.max(0)
    for p in parts:  # the parts lie in the hull's frame, inside its box
        assert np.all(p.min(0) >= lo - 1e-6) and np.all(p.max(0) <= hi + 1e-6)
    obj = objects.from_file(np.random.default_rng(0), str(tmp_path / "l.obj"), "obj0", "green")
    m = build(Scene(objects=(obj,)), EMB, 1)
    assert sum(m.geom_bodyid == m.body("obj0").id) == len(parts) == len(obj.parts)


def test_checker_treats_every_part_as_the_object():
    m = build(Scene(objects=(_cup(),)), EMB, 1)
    lay = Layout(m, EMB)
    checker = Checker(m, lay.arm_qadr, lay.robot_bodies)
    parts = np.flatnonzero(m.geom_bodyid == m.body("obj0").id)
    checker.allow([int(lay.obj_geom[0]), lay.table_geom])
    assert checker._allowed[parts].all() and checker._allowed[lay.table_geom]
    assert not checker._allowed[lay.target_geoms].any()  # world geoms are allowed one by one


def test_cups_are_picked_and_placed():
    from synth.config import compose_config, settings
    from synth.generate import make_worker

    w = make_worker(settings(compose_config(["randomizers.object_shape.shapes=[cup]"])))
    eps, recs = w.block(list(range(6)))
    assert len(eps) >= 4, [r["reason"] for r in recs]
    assert all("cup" in e.instruction for e in eps)
