"""Counterfactual instruction pairs: one scene, several instructions, each with its own trajectory."""

import numpy as np
import pytest

from synth.config import compose_config, settings
from synth.embodiment import load
from synth.errors import ConfigError
from synth.generate import make_worker
from synth.language import refer

OVERRIDES = ["task=pick_place", "counterfactuals=2", "randomizers.distractors.count=[2,3]"]


def _worker(extra=()):
    s = settings(compose_config([*OVERRIDES, *extra]))
    return make_worker(s)


def test_a_pair_shares_its_scene_and_differs_in_object_instruction_and_trajectory():
    w = _worker()
    done = 0
    for g in range(4):
        a, b = w.prepare(2 * g), w.prepare(2 * g + 1)
        if b.failure == "no_counterfactual":
            continue
        j = b.draws["counterfactual"]["object"]
        assert a.draws["counterfactual"] == {"scene": g, "variant": 0, "object": 0}
        assert a.scene.table == b.scene.table and a.scene.target == b.scene.target
        # the same objects in the same places; objects[0] and objects[j] swapped
        assert b.scene.objects[0].xy == a.scene.objects[j].xy and b.scene.objects[j].xy == a.scene.objects[0].xy
        assert refer(a.scene, 0) in a.instruction and refer(b.scene, 0) in b.instruction
        assert refer(a.scene, 0) != refer(b.scene, 0)
        if a.plan is None or b.plan is None:
            continue
        res = w.execute([a, b])
        for att, r in zip((a, b), res, strict=True):
            if att.failure:
                continue
            lay, fr = r["layout"], r["frames"]
            xy = np.stack([fr.qpos[:, q : q + 2] for q in lay.obj_qadr[: len(att.scene.objects)]], 1)
            moved = np.flatnonzero(np.linalg.norm(xy[-1] - xy[0], axis=1) > 0.05).tolist()
            assert moved == [0], moved  # the physics moved the named object, and only it
        if not a.failure and not b.failure:
            n = min(len(a.p.actions), len(b.p.actions))
            assert not np.allclose(a.p.actions[:n], b.p.actions[:n], atol=1e-3)
            done += 1
    assert done >= 1


def test_off_by_default_and_refused_where_it_cannot_apply():
    s = settings(compose_config(["task=pick_place"]))
    assert s.counterfactuals == 1 and "counterfactuals" not in s.fingerprint()
    with pytest.raises(ConfigError, match="counterfactuals"):
        settings(compose_config(["task=stack", "counterfactuals=2"]))
    with pytest.raises(ConfigError, match="counterfactuals"):
        settings(compose_config(["task=pick_place", "counterfactuals=0"]))


def test_a_scene_without_another_candidate_is_counted_not_written():
    w = _worker(["randomizers.distractors.count=[0,0]"])
    assert w.prepare(1).failure == "no_counterfactual"
    assert load("panda").dof == 7


def test_a_counterfactual_episode_replays(tmp_path):
    """synth view's replay rebuilds a counterfactual episode's scene (its group's, objects swapped)."""
    import subprocess
    import sys

    from synth.replay import replay

    out = tmp_path / "cf"
    args = [*OVERRIDES, "n=4", f"out={out}", "workers=1", "progress=false"]
    r = subprocess.run([sys.executable, "-m", "synth.cli", "generate", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    odd = [e for e in range(4) if replay(out, e).meta["attempt"] % 2 == 1]
    assert odd, "no counterfactual episode was written"
    rep = replay(out, odd[0])
    assert abs(rep.replayed_state - rep.recorded_state).max() < 1e-4
