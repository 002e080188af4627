"""The batched planner's detours for transits whose straight segment collides (synth/batch_planner/detour.py):
clear of MuJoCo's own contacts all along, run by the kinematic timeline as three legs, and worlds without a
detour timed as before."""

import mujoco
import numpy as np
import pytest

from synth.batch_planner.planner import Planner
from synth.config import compose_config, settings
from synth.embodiment import load
from synth.kinematic_mode import timeline
from synth.randomize import apply
from synth.skill import START
from synth.tabletop.compiler import Layout, build, initial_qpos

CASES = {"sort": ["task=sort"], "stack3": ["task=stack", "task.levels=3"]}
MARGIN = 0.004  # [m] what MuJoCo must find between the robot and the world (the planner keeps a transit's margin)


def _plan(case: str, n: int):
    s = settings(compose_config(["progress=false", "mode=kinematic", "seed=0", *CASES[case]]))
    scenes = [apply(list(s.randomizers), s.task.scene(), s.seed, i)[0] for i in range(n)]
    emb = load(s.embodiment)
    return s, scenes, emb, Planner(s.task, emb, 20.0).plan(scenes)


def _contacts(model, data, lay, carried: int | None) -> list[tuple[str, str, float]]:
    """The contacts closer than MARGIN of the robot (and the carried object's geom) with anything else."""
    robot = set(np.flatnonzero(np.isin(model.geom_bodyid, lay.robot_bodies)).tolist())
    if carried is not None:
        robot.add(int(lay.obj_geom[carried]))
    out = []
    for c in data.contact[: data.ncon]:
        if (c.geom1 in robot) != (c.geom2 in robot) and c.dist < MARGIN:
            out.append((model.geom(c.geom1).name, model.geom(c.geom2).name, float(c.dist)))
    return out


def _legs(a: np.ndarray, via: np.ndarray, b: np.ndarray, step: float = 0.0075) -> np.ndarray:
    """(N, dof) configurations along a -> via[0] -> via[1] -> b, no two further apart than step [rad]."""
    ends = [a, via[0], via[1], b]
    out = []
    for q0, q1 in zip(ends[:-1], ends[1:], strict=True):
        n = max(1, int(np.ceil(np.abs(q1 - q0).max() / step)))
        out.append(q0 + np.linspace(0.0, 1.0, n + 1)[:, None] * (q1 - q0))
    return np.concatenate(out)


@pytest.mark.parametrize("case", list(CASES))
def test_detours_are_clear_of_mujoco_contacts(case):
    """Every detoured transit of a successful plan, at 4x the planner's sampling, with the objects of the earlier
    pick-and-places where they rest and a carried object moving with the hand: MuJoCo finds the robot (and what
    it carries) no closer than MARGIN to the world."""
    s, scenes, emb, plan = _plan(case, 24)
    script = s.task.script()
    keys = {name: i for i, name in enumerate((START, *script.names))}
    carried = dict(zip([g.phase for g in script.segments], script.carried(), strict=True))
    grasp = keys[script.grasp_key]
    checked = 0
    for w in np.flatnonzero(plan["ok"]):
        done = [(p, m) for p, v in plan["via"].items() for m in range(v.shape[1]) if not np.isnan(v[w, m]).any()]
        if not done:
            continue
        sc = scenes[w]
        model = build(sc, emb, len(sc.objects))
        model.geom_margin[:] = MARGIN  # MuJoCo reports the pairs closer than this
        data = mujoco.MjData(model)
        lay = Layout(model, emb)
        q0 = initial_qpos(model, emb, lay)
        places = s.task.placements(sc)
        for p, m in done:
            qpos = q0.copy()
            for earlier in places[:m]:  # set down where they rest
                qpos[lay.obj_qadr[earlier.object] : lay.obj_qadr[earlier.object] + 3] = (*earlier.xy, earlier.rest)
            obj = places[m].object if carried[p] else None
            rel = None
            if obj is not None:  # the object's pose in the hand frame at the grasp
                data.qpos[:] = qpos
                data.qpos[lay.arm_qadr] = plan["q"][w, m, grasp]
                data.qpos[lay.finger_qadr] = plan["width"][w, m] / 2
                mujoco.mj_forward(model, data)
                H = data.xmat[lay.hand_body].reshape(3, 3)
                body = model.geom_bodyid[lay.obj_geom[obj]]
                rel = (H.T @ (data.xpos[body] - data.xpos[lay.hand_body]), H.T @ data.xmat[body].reshape(3, 3))
            seg = next(g for g in script.segments if g.phase == p)
            path = _legs(plan["q"][w, m, keys[seg.start]], plan["via"][p][w, m], plan["q"][w, m, keys[seg.end]])
            for q in path:
                data.qpos[:] = qpos
                data.qpos[lay.arm_qadr] = q
                if rel is not None:
                    data.qpos[lay.finger_qadr] = plan["width"][w, m] / 2
                    mujoco.mj_kinematics(model, data)
                    H = data.xmat[lay.hand_body].reshape(3, 3)
                    a = lay.obj_qadr[obj]
                    data.qpos[a : a + 3] = data.xpos[lay.hand_body] + H @ rel[0]
                    mujoco.mju_mat2Quat(data.qpos[a + 3 : a + 7], (H @ rel[1]).ravel())
                mujoco.mj_forward(model, data)
                assert not _contacts(model, data, lay, obj), (w, p, m, _contacts(model, data, lay, obj))
            checked += 1
    assert checked >= 3  # the sample has detours


def test_timeline_runs_a_detour_in_three_legs_and_the_other_worlds_as_before():
    s, scenes, emb, plan = _plan("stack3", 24)
    ok = np.flatnonzero(plan["ok"])
    via = {p: v[ok] for p, v in plan["via"].items()}
    had = np.zeros(len(ok), bool)
    for v in via.values():
        had |= ~np.isnan(v[:, :, 0, 0]).all(1)
    assert had.any() and not had.all()
    q = plan["q"][ok]
    with_via, without = timeline(s.task, emb, q, 20.0, via), timeline(s.task, emb, q, 20.0)
    for w in np.flatnonzero(~had):  # no detour: the same frames
        n = without["length"][w]
        assert with_via["length"][w] == n
        for k in ("actions", "phase", "segment"):
            np.testing.assert_array_equal(with_via[k][w, :n], without[k][w, :n])
    for w in np.flatnonzero(had):  # a detour passes through both vias, in the transit's phase, and takes longer
        assert with_via["length"][w] > without["length"][w]
        acts = with_via["actions"][w, : with_via["length"][w], : emb.dof]
        for p, v in via.items():
            for m in np.flatnonzero(~np.isnan(v[w, :, 0, 0])):
                for k in range(2):
                    hit = np.flatnonzero(np.abs(acts - v[w, m, k]).max(1) < 1e-9)
                    assert len(hit) == 1
                    assert s.task.phases[with_via["phase"][w, hit[0]]] == p
