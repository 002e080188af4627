"""judge over the world axis (Task.judge_batch) says what judge says world by world, for every task, on real
physics of a batch of randomized worlds (latencies included), and on copies of it broken so that each verdict of
the vectorized pick-and-place judge is reached."""

import dataclasses

import numpy as np
import pytest

from synth.embodiment import load
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.task import FrameBatch

RANDS = {"object_pose": {}, "target": {}, "object_shape": {}, "action_noise": {"latency": [1, 2]}}


def _batch(task: str, n: int = 4) -> tuple[Worker, list, FrameBatch, object]:
    """Real physics of n randomized attempts, as one FrameBatch: the CPU backend steps together only plans of
    about one length, so the worlds of its batches are joined here, padded with NaN (which judging must ignore)."""
    body = "panda" if TASKS.get(task).arms == 1 else "aloha"
    rands = [RANDOMIZERS.build(k, v) for k, v in RANDS.items() if k in RANDOMIZERS.names()]
    w = Worker(TASKS.build(task), rands, load(body), seed=11)
    atts = [a for a in (w.prepare(i) for i in range(3 * n)) if a.plan is not None][:n]
    seen: list = []
    real = w.task.judge_batch
    object.__setattr__(w.task, "judge_batch", lambda p, fr, lay: seen.append((p, fr, lay)) or real(p, fr, lay))
    w.execute(atts)
    plans = [p for ps, _, _ in seen for p in ps]
    worlds = [fr.world(i) for _, fr, _ in seen for i in range(len(fr.start))]
    late = np.array([int(fr.start[i]) for _, fr, _ in seen for i in range(len(fr.start))])
    F = max(len(x.qpos) for x in worlds) + int(late.max())

    def pad(arrays: list[np.ndarray], extra: int = 0) -> np.ndarray:
        out = np.full((len(arrays), F - extra, arrays[0].shape[1]), np.nan)
        for i, x in enumerate(arrays):
            out[i, late[i] : late[i] + len(x)] = x
        return out

    frames = FrameBatch(
        pad([x.qpos for x in worlds]),
        pad([x.qvel for x in worlds]),
        pad([x.sensordata for x in worlds], 1),
        late,
        np.array([len(x.qpos) for x in worlds]),
    )
    return w, plans, frames, seen[0][2]


def _same(task, plans, frames: FrameBatch, lay) -> list[str]:
    batch = task.judge_batch(plans, frames, lay)
    assert batch == [task.judge(p, frames.world(w), lay) for w, p in enumerate(plans)]
    return batch


@pytest.mark.parametrize("name", TASKS.names())
def test_the_batched_verdicts_are_the_per_world_ones(name):
    w, plans, frames, lay = _batch(name)
    assert len(plans) > 1 and len(set(frames.start)) > 1, "worlds with different latencies in one batch"
    _same(w.task, plans, frames, lay)


def _broken(frames: FrameBatch, plans, lay, how: str) -> FrameBatch:
    q = frames.qpos.copy()
    a = int(lay.obj_qadr[0])
    for w, p in enumerate(plans):
        first, last = int(frames.start[w]), int(frames.start[w] + frames.length[w] - 1)
        if how == "nan":
            q[w, first + 3, 0] = np.nan
        elif how == "nan_in_padding" and last + 1 < q.shape[1]:
            q[w, last + 1 :, 0] = np.nan
        elif how == "slip":
            q[w, first + p.check["lift_end"], a + 2] = p.check["z0"]
        elif how == "drop":
            q[w, first + p.check["transit_end"], a + 2] = p.check["z0"]
        elif how == "closed":
            q[w, last, lay.finger_qadr] = 0.0
        elif how == "outside":
            q[w, last, a] += 1.0
    return dataclasses.replace(frames, qpos=q)


@pytest.mark.parametrize("name", ["pick_place", "place_in_container"])
def test_each_verdict_of_the_vectorized_pick_and_place_judge(name):
    w, plans, frames, lay = _batch(name)
    base = _same(w.task, plans, frames, lay)
    ok = [i for i, x in enumerate(base) if x == ""]
    assert len(ok) >= 2, base
    want = {"nan": "unstable", "slip": "grasp_slip", "drop": "dropped", "closed": "not_released"}
    want |= {"outside": "placed_outside", "nan_in_padding": ""}
    for how, why in want.items():
        got = _same(w.task, plans, _broken(frames, plans, lay, how), lay)
        assert [got[i] for i in ok] == [why] * len(ok), (how, got)
