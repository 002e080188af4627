"""Every registered task: plans, executes, and is judged honestly by the physics."""

import mujoco
import numpy as np
import pytest

from synth.embodiment import load, names
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout
from synth.task import Frames, Plan

# every (task, embodiment) pair the task supports: as many arms as its skill script drives
PAIRS = [(t, e) for t in TASKS.names() for e in names() if len(load(e).mounts) == TASKS.get(t).arms]


def _default(name):
    """The embodiment a task is checked on where one is enough: panda, or aloha for a two-arm task."""
    return "panda" if TASKS.get(name).arms == 1 else "aloha"


# they change the expert's demonstration (regrasp, near_miss), tested on their own below
DEMONSTRATIONS = tuple(RANDOMIZERS.where(acts_on="expert"))
EXECUTION = tuple(RANDOMIZERS.where(acts_on="execution"))  # action_noise, action_drift


def _worker(name, emb="panda", seed=0, without=()):
    """Every randomizer but those `without` and DEMONSTRATIONS: regrasp's deliberate misses cost yield by design
    (see test_regrasp_closes_beside_the_object_then_takes_it), and both add the phase `miss`."""
    rands = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names() if n not in (*without, *DEMONSTRATIONS)]
    return Worker(TASKS.build(name), rands, load(emb), seed=seed)


def _resimulate(model, state0, actions, hz, settle_s, scale, body):
    """An independent re-run: mj_step from Python with first-order-hold targets, frames at the control rate.
    The targets are interpolated with the same float operations as synth.execute.controls: a springy contact
    (restitution) can turn last-bit differences into millimetres."""
    d = mujoco.MjData(model)
    mujoco.mj_setState(model, d, state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(model, d)
    steps = round(1 / (hz * model.opt.timestep))
    acts = np.vstack([actions, np.repeat(actions[-1:], round(settle_s * hz), 0)])
    prev = body.start
    qpos, qvel = [d.qpos.copy()], [d.qvel.copy()]
    for a in acts:
        for k in range(1, steps + 1):
            d.ctrl[:] = (prev + (k / steps) * (a - prev)) * scale  # the same rounding as execute.controls
            mujoco.mj_step(model, d)
        prev = a
        qpos.append(d.qpos.copy())
        qvel.append(d.qvel.copy())
    return Frames(np.array(qpos), np.array(qvel), np.zeros((len(acts), model.nsensordata)))


@pytest.mark.parametrize(("name", "emb"), PAIRS)
def test_task_generates_valid_honest_episodes(name, emb):
    body = load(emb)
    w = _worker(name, emb)
    eps, recs = w.block(list(range(4)))
    assert len(recs) == 4 and len(eps) >= 2, [r["reason"] for r in recs]
    task = w.task
    A = len(body.action_names)  # per arm its joints and gripper
    for e in eps:
        T = e.length
        assert e.state.shape == (T, A) and e.action.shape == (T, A)
        assert np.isfinite(e.state).all() and np.isfinite(e.action).all()
        assert e.labels["synth.phase"].shape == (T,)
        assert e.labels["observation.ee_pose"].shape == (T, 7 * len(body.mounts))
        recovery = {task.phases.index(p) for p in ("miss", "regrasp") if p in task.phases}  # only DEMONSTRATIONS
        assert set(np.unique(e.labels["synth.phase"])) == set(range(len(task.phases))) - recovery, "every phase"
        ph = e.labels["synth.phase"]
        assert np.all((np.diff(ph) >= 0) | (ph[1:] == 0)), "phases run in order (each pick-and-place anew)"
        assert e.instruction and e.meta["draws"] and e.meta["planner"]
        noise = e.meta["draws"].get("state_noise", {}).get("joints", 0.0)  # the written state may be noisy
        joints = np.delete(e.state[0], body.gripper_columns)
        np.testing.assert_allclose(joints, body.home, atol=1e-6 + 5 * noise)
    # determinism: the same attempts again, in another order and batch size
    w2 = _worker(name, emb)
    w2.batch = 1
    eps2, _ = w2.block([3, 2, 1, 0])
    by = {e.attempt: e for e in eps2}
    for e in eps:
        np.testing.assert_array_equal(e.action, by[e.attempt].action)
        np.testing.assert_array_equal(e.state, by[e.attempt].state)
        assert e.instruction == by[e.attempt].instruction


@pytest.mark.parametrize(("name", "emb"), PAIRS)
def test_success_is_decided_by_the_physics(name, emb):
    """Re-simulating a written episode's actions from its recorded initial state succeeds; the same
    episode with the arm stopping after its first phase (or the gripper never closing) is judged a failure
    by the same predicates."""
    body = load(emb)
    w = _worker(name, emb, seed=1)
    for i in range(8):  # the first attempt the generator would write
        att = w.prepare(i)
        if att.plan is not None:
            res = w.execute([att])[0]
            if att.failure == "":
                break
    assert att.plan is not None and att.failure == "", att.failure
    lay = Layout(att.model, body)
    state0 = res["state0"]
    ran = w.executed(att)  # the targets the physics ran (noisy and late under action_noise)
    again = _resimulate(att.model, state0, ran, w.ctx.control_hz, w.task.settle, w.scale, body)
    assert w.task.judge(att.plan, again, lay) == ""
    np.testing.assert_allclose(again.qpos[-1], res["frames"].qpos[-1], atol=2e-3)
    stopped = att.plan.actions.copy()  # the arm stops where its first phase ends
    first = int(np.argmax(att.plan.phase != 0))
    stopped[first:] = stopped[first - 1]
    sabotage = [stopped]
    if "close" in w.task.phases and w.task.grip_needed:
        never_close = att.plan.actions.copy()
        never_close[:, -1] = body.gripper.stroke
        sabotage.append(never_close)
    for acts in sabotage:
        bad = _resimulate(att.model, state0, acts, w.ctx.control_hz, w.task.settle, w.scale, body)
        assert w.task.judge(att.plan, bad, lay) != ""
        assert w.task.outcome(att.scene, bad, lay) != ""


@pytest.mark.parametrize(("name", "emb"), PAIRS)
def test_success_rate_on_a_sample(name, emb):
    """Every randomizer but action_drift, a disturbance for corrective demonstrations whose strength sets the
    yield (a push has no gripper change to fade it out near contact; pick_place keeps 98% at its default)."""
    w = _worker(name, emb, seed=11, without=("action_drift",))
    _, recs = w.block(list(range(24)))
    ok = np.mean([r["success"] for r in recs])
    assert ok >= 0.8, [r["reason"] for r in recs]


@pytest.mark.parametrize("name", TASKS.names())
def test_plan_free_outcome_agrees_with_the_judge(name):
    """Task.outcome (what judges a policy) calls the expert's episodes the same as Task.judge does, action noise and
    drift included: both read the final settled frame."""
    w = _worker(name, _default(name), seed=5)
    planned = [a for a in (w.prepare(i) for i in range(10)) if a.plan is not None]
    res = w.execute(planned)
    assert sum(not a.failure for a in planned) >= 6
    for a, r in zip(planned, res, strict=True):
        assert (w.task.outcome(a.scene, r["frames"], r["layout"]) == "") == (a.failure == ""), (a.index, a.failure)


def test_three_high_stack():
    """stack with task.levels=3: two pick-and-places from the bottom up, the instruction names all three
    blocks, and the judge wants both blocks on the one below (stopping after the first one fails)."""
    from synth.language import refer, substitute

    body = load("panda")
    rands = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names() if n not in DEMONSTRATIONS]
    w = Worker(TASKS.build("stack", {"levels": 3}), rands, body, seed=0)
    atts = [w.prepare(i) for i in range(6)]
    planned = [a for a in atts if a.plan is not None]
    res = w.execute(planned)
    good = [(a, r) for a, r in zip(planned, res, strict=True) if a.failure == ""]
    assert len(good) >= 4, [a.failure for a in atts]
    a, r = good[0]
    assert all(substitute(refer(a.scene, k), a.scene.perturb.words) in a.instruction for k in range(3)), a.instruction
    assert [m["object"] for m in a.plan.check["moves"]] == [1, 0]
    assert np.sum(np.diff(a.plan.phase) < 0) == 1, "two pick-and-places"
    assert w.task.outcome(a.scene, r["frames"], r["layout"]) == ""
    first = int(np.flatnonzero(np.diff(a.plan.phase) < 0)[0]) + 1  # the second pick-and-place starts here
    stopped = a.plan.actions.copy()
    stopped[first:] = stopped[first - 1]
    bad = _resimulate(a.model, r["state0"], stopped, w.ctx.control_hz, w.task.settle, w.scale, body)
    lay = Layout(a.model, body)
    assert w.task.judge(a.plan, bad, lay) != "" and w.task.outcome(a.scene, bad, lay) != ""


@pytest.mark.parametrize("by", ["colour", "shape"])
def test_sort_judges_an_object_in_the_wrong_region(by):
    """sort: the same scene planned with two objects of different classes swapped (each carried to the other
    class's region) is done by the physics as planned, yet judged `wrong_region` against the true classes,
    by the judge and by the plan-free outcome alike."""
    from synth.pipeline import Attempt

    rands = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names() if n not in (*EXECUTION, *DEMONSTRATIONS)]
    w = Worker(TASKS.build("sort", {"by": by}), rands, load("panda"), seed=2)
    for i in range(8):
        att = w.prepare(i)
        if att.plan is None:
            continue
        groups = list(att.scene.groups)
        a, b = groups.index(0), groups.index(1)
        groups[a], groups[b] = 1, 0
        wrong = att.scene.replace(groups=tuple(groups))
        plan = w.task.plan(w.context(wrong), wrong, att.model, 7)  # the scene's base (robot_base)
        if isinstance(plan, str):
            continue
        bad = Attempt(1000 + i, wrong, {}, "", model=att.model, plan=plan)  # execute keys results by index
        right, swapped = w.execute([att, bad])
        if att.failure or bad.failure:  # either did not go as planned: no evidence either way
            continue
        lay = swapped["layout"]
        truth = Plan(
            plan.actions, plan.phase, {**plan.check, **w.task.place_check(att.scene)}
        )  # its timing, true classes
        assert w.task.judge(truth, swapped["frames"], lay) == "wrong_region"
        assert w.task.outcome(att.scene, swapped["frames"], lay) == "wrong_region"
        assert w.task.outcome(att.scene, right["frames"], lay) == ""
        return
    raise AssertionError("no attempt planned and executed both ways")


def test_release_check_shared_by_the_pick_and_place_tasks():
    """PickPlace.released ends the plan-free outcome of pick_place, pick_place_multi and sort: every object lifted,
    then placed at the last frame with the fingers opened wider than at the last of those lifts."""
    from types import SimpleNamespace

    task = TASKS.build("pick_place_multi", {})
    lay = SimpleNamespace(obj_qadr=np.array([0, 7]), finger_qadr=np.array([14, 15]))
    q = np.zeros((10, 16))
    q[3:6, 2] = q[5:8, 9] = 0.1  # object 0 up at frame 3, object 1 at frame 5 (half a lift is 0.06)
    frames = Frames(q, np.zeros((10, 15)), np.zeros((10, 0)))
    late, early = np.arange(10) >= 8, np.arange(10) <= 5
    assert task.released(frames, lay, late, 2) == "not_released"  # placed, the fingers never opened
    assert task.released(frames, lay, early, 2, "wrong_region") == "wrong_region"  # only before the last lift
    q[9, 14:16] = 0.01  # open at frame 9
    assert task.released(frames, lay, late, 2) == ""
    assert task.released(frames, lay, late & (np.arange(10) < 9), 2) == "placed_outside"  # moved off at the end
    q[5:8, 9] = 0.05  # object 1 never half a lift up
    assert task.released(frames, lay, late, 2) == "not_lifted" and task.released(frames, lay, late, 1) == ""
    q[4, 0] = np.nan
    assert task.released(frames, lay, late, 1) == "unstable"


def test_regrasp_closes_beside_the_object_then_takes_it():
    """randomizers.regrasp with chance 1: the expert first closes `offset` beside the object (phase `miss`), then
    lifts, opens and grasps it (phase `regrasp`, then the usual phases), and the physics judges the episode: a
    miss that lifted the object after all fails as `miss_held` (it was no miss), so a written episode's object
    is only lifted after the second close; a miss that pushed the object fails on the regrasp."""
    rands = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    rands.append(RANDOMIZERS.build("regrasp", {"chance": 1.0, "offset": [0.04, 0.045]}))
    w = Worker(TASKS.build("pick_place"), rands, load("panda"), seed=4)
    planned = [a for a in (w.prepare(i) for i in range(12)) if a.plan is not None]
    res = w.execute(planned)
    phases = w.task.phases
    miss, regrasp, close = (phases.index(p) for p in ("miss", "regrasp", "close"))
    won = 0
    for a, r in zip(planned, res, strict=True):
        assert a.plan.stats["regrasp"], "a clear miss was not planned"
        ph, grip = a.plan.phase, a.plan.actions[:, -1]
        first = int(np.argmax(grip < grip[0]))  # the first command to close
        assert ph[first] == miss and ph[: first + 1].tolist() == [miss] * (first + 1)
        after = np.flatnonzero(ph == regrasp)
        assert after[0] > first and (ph[after[-1] + 1 :] != miss).all() and close in ph[after[-1] :]
        fr, lay = r["frames"], r["layout"]
        d = mujoco.MjData(a.model)
        qadr, site = int(lay.obj_qadr[0]), lay.arms[0].tcp
        d.qpos[:] = fr.qpos[first]
        mujoco.mj_kinematics(a.model, d)
        off = np.hypot(*(d.site(site).xpos[:2] - fr.qpos[first, qadr : qadr + 2]))
        drawn = np.hypot(a.draws["regrasp"]["dx"], a.draws["regrasp"]["dy"])
        assert abs(off - drawn) < 0.01, (off, drawn)  # the hand came down where the draw says, beside the object
        z = fr.qpos[:, qadr + 2]
        assert (z[: after[-1]].max() > z[0] + 0.02) == (a.failure == "miss_held")  # caught by the miss: no miss
        won += a.failure == ""
    assert won >= len(planned) // 4, [a.failure for a in planned]


@pytest.mark.parametrize("name", ["place_in_container", "pick_place_multi", "sort", "stack"])
def test_regrasp_plans_a_miss_before_the_first_pick_of_every_pick_and_place_task(name):
    """The tasks built on pick_place's skill script take the regrasp randomizer too: the first command to close
    is the miss, before any other phase than `miss`, and only the first pick-and-place misses; the judge calls
    `miss_held` exactly where the miss lifted the object."""
    rands = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names() if n not in (*EXECUTION, *DEMONSTRATIONS)]
    rands.append(RANDOMIZERS.build("regrasp", {"chance": 1.0, "offset": [0.04, 0.045]}))
    w = Worker(TASKS.build(name), rands, load("panda"), seed=2)
    planned = [a for a in (w.prepare(i) for i in range(6)) if a.plan is not None and a.plan.stats.get("regrasp")]
    assert len(planned) >= 3
    res = w.execute(planned)
    miss, regrasp = w.task.phases.index("miss"), w.task.phases.index("regrasp")
    for a, r in zip(planned, res, strict=True):
        ph, grip = a.plan.phase, a.plan.actions[:, -1]
        first = int(np.argmax(grip < grip[0]))
        missed = np.flatnonzero(ph == miss)  # from the start, once, through the first close
        assert np.array_equal(missed, np.arange(len(missed))) and first < len(missed)
        assert np.flatnonzero(ph == regrasp)[0] == len(missed)
        c = a.plan.check["regrasp"]
        z = r["frames"].qpos[: c["end"], int(r["layout"].obj_qadr[c["object"]]) + 2]
        assert (z.max() > c["z0"] + 0.02) == (a.failure == "miss_held")


@pytest.mark.parametrize("name", ["pick_place", "stack"])
def test_near_miss_stops_beside_and_above_the_grasp_then_takes_it(name):
    """randomizers.near_miss with chance 1: the expert's first descent stops where the draw says, beside and above
    the planned grasp (phase `miss`, from the episode's start), without moving the object, and from there goes
    straight to the grasp (phase `grasp`) and closes as always; the physics judges the episode as any other."""
    rands = [RANDOMIZERS.build(n) for n in ("object_shape", "object_pose", "target")]
    rands.append(RANDOMIZERS.build("near_miss", {"chance": 1.0, "offset": [0.01, 0.025], "height": [0.02, 0.04]}))
    w = Worker(TASKS.build(name), rands, load("panda"), seed=4)
    prepared = [w.prepare(i) for i in range(10)]
    planned = [a for a in prepared if a.plan is not None and a.plan.stats.get("near_miss")]
    assert len(planned) >= 5, [a.plan and a.plan.stats.get("near_miss") for a in prepared]  # most are clear
    res = w.execute(planned)
    miss, grasp, close = (w.task.phases.index(p) for p in ("miss", "grasp", "close"))
    for a, r in zip(planned, res, strict=True):
        ph, grip = a.plan.phase, a.plan.actions[:, -1]
        missed = np.flatnonzero(ph == miss)
        assert np.array_equal(missed, np.arange(len(missed))) and ph[len(missed)] == grasp  # the correction follows
        assert (grip[: len(missed) + 1] == grip[0]).all() and close in ph  # open all the way down to the stop
        fr, lay = r["frames"], r["layout"]
        d = mujoco.MjData(a.model)
        qadr, site = int(lay.obj_qadr[0]), lay.arms[0].tcp
        stop = len(missed) - 1
        d.qpos[:] = fr.qpos[stop]
        mujoco.mj_kinematics(a.model, d)
        tcp_stop = d.site(site).xpos.copy()
        d.qpos[:] = fr.qpos[np.flatnonzero(ph == close)[0]]
        mujoco.mj_kinematics(a.model, d)
        off = tcp_stop - d.site(site).xpos  # the stop relative to where the grasp closes
        dr = a.draws["near_miss"]
        assert abs(np.hypot(*off[:2]) - np.hypot(dr["dx"], dr["dy"])) < 0.006, (off, dr)
        assert abs(off[2] - dr["dz"]) < 0.006, (off, dr)
        obj = fr.qpos[: stop + 1, qadr : qadr + 3]
        assert np.abs(obj - obj[0]).max() < 0.002  # the stop did not touch the object
    assert sum(a.failure == "" for a in planned) >= len(planned) - 1, [a.failure for a in planned]
