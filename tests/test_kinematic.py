"""mode=kinematic: numpy kinematics against MuJoCo, the sphere-cover collision check against MuJoCo's contacts,
the written dataset against physics mode's, determinism across workers, and success honesty under physics."""

import json
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pyarrow.parquet as pq
import pytest

from synth.arm_kinematics import Kinematics
from synth.batch_planner import capsules
from synth.batch_planner.planner import Planner, quat_from_mat
from synth.config import compose_config, settings
from synth.embodiment import load, names
from synth.errors import ConfigError
from synth.randomize import apply
from synth.robot import robot_only
from synth.tabletop.compiler import Layout, build, initial_qpos


@pytest.mark.parametrize("name", [n for n in names() if not load(n).arms])  # kinematic mode: one arm
def test_forward_kinematics_and_jacobian_match_mujoco(name):
    emb = load(name)
    m = robot_only(emb)  # its base is at the origin
    d = mujoco.MjData(m)
    kin = Kinematics(emb, np.zeros(3))
    q = np.random.default_rng(0).uniform(emb.lower, emb.upper, (20, emb.dof))
    ch = kin.fk(q)
    J = kin.jacobian(ch)
    site = m.site("tcp").id
    for w in range(len(q)):
        d.qpos[: emb.dof] = q[w]
        mujoco.mj_forward(m, d)
        np.testing.assert_allclose(ch.tcp[w], d.site_xpos[site], atol=1e-6)
        np.testing.assert_allclose(ch.tcp_rot[w], d.site_xmat[site].reshape(3, 3), atol=1e-6)
        for i in range(emb.dof):
            np.testing.assert_allclose(ch.frames[w, i, :3, 3], d.body(f"link{i + 1}").xpos, atol=1e-6)
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jp, jr, site)
        np.testing.assert_allclose(J[w], np.r_[jp, jr][:, : emb.dof], atol=1e-6)
        mq = np.empty(4)
        mujoco.mju_mat2Quat(mq, d.site_xmat[site])
        assert min(np.abs(quat_from_mat(ch.tcp_rot[w : w + 1])[0] - s * mq).max() for s in (1, -1)) < 1e-6


def test_ik_reaches_poses_within_limits():
    emb = load("panda")
    kin = Kinematics(emb, np.zeros(3))
    rng = np.random.default_rng(1)
    goal = np.clip(np.array(emb.home) + rng.normal(0, 0.3, (32, emb.dof)), emb.lower, emb.upper)
    ch = kin.fk(goal)
    q, ok = kin.ik(ch.tcp, ch.tcp_rot, np.tile(emb.home, (32, 1)), iters=60)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(kin.fk(q[ok]).tcp, ch.tcp[ok], atol=1e-3)
    assert np.all(q >= emb.lower) and np.all(q <= emb.upper)
    q1, ok1 = kin.ik(ch.tcp[:5], ch.tcp_rot[:5], np.tile(emb.home, (5, 1)), iters=60)  # batch-independent
    np.testing.assert_array_equal(q1, q[:5])


def _scenes(n: int, overrides=()):
    s = settings(compose_config(["progress=false", *overrides]))
    return s, [apply(list(s.randomizers), s.task.scene(), 3, i)[0] for i in range(n)]


def _mujoco_contact(model, data, lay, q) -> bool:
    """Does MuJoCo find a robot-world contact (distance < 0) at arm configuration q?"""
    data.qpos[lay.arm_qadr] = q
    mujoco.mj_forward(model, data)
    robot = set(np.flatnonzero(np.isin(model.geom_bodyid, lay.robot_bodies)))
    for c in data.contact[: data.ncon]:
        if (c.geom1 in robot) != (c.geom2 in robot) and c.dist < 0:
            return True
    return False


def test_collision_check_agrees_with_mujoco_contacts():
    """Sampled configurations reaching down into the workspace: every MuJoCo contact is found (the cover
    contains the geoms), and what the cover calls clear by more than its overshoot MuJoCo calls clear."""
    s, scenes = _scenes(4, ["randomizers=[object_shape,object_pose,target,distractors]"])
    emb = load("panda")
    planner = Planner(s.task, emb, 20.0)
    rng = np.random.default_rng(0)
    found, agree, total = 0, 0, 0
    for scene in scenes:
        model = build(scene, emb, 4)
        data = mujoco.MjData(model)
        lay = Layout(model, emb)
        data.qpos[:] = initial_qpos(model, emb, lay)
        q = np.clip(np.array(emb.home) + rng.normal(0, 0.5, (150, emb.dof)), emb.lower, emb.upper)
        q[:, 1] = rng.uniform(0.0, 1.2, 150)  # lean forward towards the table
        obs = capsules.obstacles([scene] * len(q))
        ch = planner.kin.fk(q)
        frames = capsules._frames(ch, planner.base_T)[:, None]
        none = np.zeros(obs.role.shape, bool)
        clear = capsules.robot_clearance(planner.body, frames, np.full(len(q), emb.gripper.stroke), obs, none, 0.05)
        for w in range(len(q)):
            hit = _mujoco_contact(model, data, lay, q[w])
            total += 1
            if hit:
                found += 1
                assert clear[w] < 0, f"MuJoCo contact missed at {q[w]} (clearance {clear[w]:.4f})"
            if clear[w] > 0.04:
                assert not hit
            agree += hit == (clear[w] < 0)
    assert found >= 20  # the sample really exercises contacts
    assert agree / total > 0.85


def test_a_segment_through_the_table_is_rejected():
    s, scenes = _scenes(1, ["randomizers=[]"])
    emb = load("panda")
    planner = Planner(s.task, emb, 20.0)
    h = scenes[0].table.height
    down = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1.0]])  # fingers close along x, away from the object
    above, _ = planner.kin.ik(np.array([[0.45, -0.05, h + 0.2]]), down[None], np.array([emb.home]))
    below, ok = planner.kin.ik(np.array([[0.45, -0.05, h - 0.05]]), down[None], above)
    assert ok.all()
    obs = capsules.obstacles(scenes)
    none = np.zeros(obs.role.shape, bool)
    width = np.array([emb.gripper.stroke])
    assert planner.segment_clear(np.array(emb.home)[None], above, obs, none, 0.01, width)[0] > 0
    assert planner.segment_clear(above, below, obs, none, 0.01, width)[0] < 0
    table = obs.role == capsules.TABLE
    assert planner.segment_clear(above, below, obs, table, 0.01, width)[0] > 0  # allowed: clear


def gen(out: Path, *overrides: str) -> None:
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", "seed=5", *overrides]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def kin_ref(tmp_path_factory):
    out = tmp_path_factory.mktemp("kin") / "d"
    gen(out, "mode=kinematic", "n=12", "shard=8", "workers=1")
    return out


def _frames(out: Path):
    return pq.read_table(sorted((out / "data").glob("*/*.parquet"))[0])


def test_kinematic_dataset_has_physics_mode_schema_and_marks(kin_ref, tmp_path):
    phys = tmp_path / "p"
    gen(phys, "n=2", "workers=1")
    info_k = json.loads((kin_ref / "meta" / "info.json").read_text())
    info_p = json.loads((phys / "meta" / "info.json").read_text())
    assert info_k["features"] == info_p["features"] and info_k["total_episodes"] == 12
    assert _frames(kin_ref).schema == _frames(phys).schema
    eps = pq.read_table(sorted((kin_ref / "meta" / "episodes").glob("*/*.parquet"))[0]).to_pylist()
    meta, card = json.loads(eps[0]["synth/meta"]), json.loads(eps[0]["synth/embodiment_card"])
    assert meta["mode"] == "kinematic" and card["mode"] == "kinematic"
    assert meta["check"]["kinematic"]["inside"] and min(meta["check"]["kinematic"]["clearance_m"].values()) >= 0
    assert json.loads((kin_ref / "meta" / "synth.json").read_text())["mode"] == "kinematic"
    t = _frames(kin_ref).to_pydict()
    ep0 = np.array(t["episode_index"]) == 0
    state, action = np.array(t["observation.state"])[ep0], np.array(t["action"])[ep0]
    np.testing.assert_allclose(state[1:, :7], action[:-1, :7], atol=1e-6)  # the state is the planned target
    phases = np.array(t["synth.phase"])[ep0]
    assert list(dict.fromkeys(phases)) == list(range(9))  # every phase, in order


def test_kinematic_episodes_do_not_depend_on_workers(kin_ref, tmp_path):
    out = tmp_path / "d"
    gen(out, "mode=kinematic", "n=12", "shard=8", "workers=2")
    for col in ("action", "observation.state", "synth.object_pose", "task_index"):
        assert _frames(out)[col].to_pylist() == _frames(kin_ref)[col].to_pylist()


def _all(out: Path, kind: str = "data") -> dict:
    """Every column of every file of `kind` (data or meta/episodes), the files concatenated in order."""
    files = sorted((out / kind).glob("*/*.parquet"))
    return {c: [v for f in files for v in pq.read_table(f)[c].to_pylist()] for c in pq.read_schema(files[0]).names}


def test_kinematic_data_does_not_depend_on_workers_shards_or_batches(kin_ref, tmp_path):
    """Episode i follows from (seed, i) alone: other worker counts, shard sizes and planning batches give the same
    frames (every column, bit for bit) and the same per-episode records."""
    out = tmp_path / "d"
    gen(out, "mode=kinematic", "n=12", "shard=5", "workers=2")
    assert _all(out) == _all(kin_ref)
    ep, ref = _all(out, "meta/episodes"), _all(kin_ref, "meta/episodes")
    for col in ("tasks", "length", "synth/meta", "dataset_from_index", "stats/observation.state/mean"):
        assert ep[col] == ref[col], col
    from synth.kinematic_mode import KinematicWorker

    s = settings(compose_config(["progress=false", "mode=kinematic", "seed=5"]))
    runs = [
        KinematicWorker(s.task, list(s.randomizers), load(s.embodiment), s.seed, batch=b).block_batch(list(range(40)))
        for b in (40, 7)
    ]
    (a, ra), (b, rb) = runs
    assert len(a) >= 30 and a.instructions == b.instructions and a.metas == b.metas
    for x, y in ((a.state, b.state), (a.action, b.action), *((a.labels[k], b.labels[k]) for k in a.labels)):
        assert np.array_equal(x, y)
    assert [r["reason"] for r in ra] == [r["reason"] for r in rb]


def test_kinematic_scene_and_instruction_equal_physics_mode(kin_ref, tmp_path):
    phys = tmp_path / "p"
    gen(phys, "n=2", "workers=1")
    read = lambda d: pq.read_table(sorted((d / "meta" / "episodes").glob("*/*.parquet"))[0]).to_pylist()  # noqa: E731
    k = {json.loads(r["synth/meta"])["attempt"]: r for r in read(kin_ref)}
    for r in read(phys):
        a = json.loads(r["synth/meta"])["attempt"]
        if a in k:
            assert r["tasks"] == k[a]["tasks"]
            assert json.loads(r["synth/meta"])["draws"] == json.loads(k[a]["synth/meta"])["draws"]


def test_kinematic_plans_succeed_under_physics():
    """Success honesty: kinematic plans executed by the physics path are judged successful by its judge."""
    from synth.kinematic_mode import KinematicWorker
    from synth.pipeline import Attempt, Worker
    from synth.task import Plan

    s = settings(compose_config(["progress=false", "mode=kinematic", "seed=2"]))
    emb = load(s.embodiment)
    kw = KinematicWorker(s.task, list(s.randomizers), emb, s.seed, batch=16)
    eps, _ = kw.block(list(range(12)))
    pw = Worker(s.task, list(s.randomizers), emb, s.seed)
    atts = []
    for e in eps:
        scene, draws = apply(pw.randomizers, s.task.scene(), s.seed, e.attempt)
        model = build(scene, emb, pw.slots)
        plan = Plan(
            e.labels.get("synth.joint_target", e.action).astype(float), e.labels["synth.phase"], e.meta["check"]
        )
        atts.append(Attempt(e.attempt, scene, draws, e.instruction, model, plan))
    pw.execute(atts)
    ok = [a.failure == "" for a in atts]
    assert len(eps) >= 10 and sum(ok) >= 0.8 * len(ok), [a.failure for a in atts]


@pytest.mark.parametrize(
    "override, message",
    [
        (["mode=kinematic", "cameras=[front]"], "renders nothing"),
        (["mode=dynamic"], "choose physics or kinematic"),
        (["mode=kinematic", "randomizers=[object_shape,regrasp]"], r"does not apply randomizers \['regrasp'\]"),
        (["mode=kinematic", "randomizers=[object_shape,near_miss]"], r"does not apply randomizers \['near_miss'\]"),
    ],
)
def test_bad_kinematic_config_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        settings(compose_config(override))


def test_physics_fingerprint_unchanged_and_kinematic_distinct():
    phys = settings(compose_config(["shard=16"])).fingerprint()
    assert "mode" not in phys
    assert settings(compose_config(["shard=16", "mode=kinematic"])).fingerprint()["mode"] == "kinematic"


def test_place_in_container_plans_kinematically():
    s, scenes = _scenes(16, ["task=place_in_container", "mode=kinematic"])
    out = Planner(s.task, load("panda"), 20.0).plan(scenes)
    assert out["ok"].mean() >= 0.8
    assert out["q"].shape == (16, 1, 1 + len(s.task.script().keys), 7)  # one pick-and-place
    assert np.allclose(load("panda").base_pose()[0], [0, 0, 0.75])


def test_shard_stats_equal_per_episode_stats():
    """The writer's batched per-episode stats are lerobot's per-episode stats, number for number."""
    from synth.dataset.staging import episode_stats, shard_stats
    from synth.types import Episode

    rng = np.random.default_rng(0)
    eps = [
        Episode(
            i,
            "x",
            rng.normal(size=(n, 8)).astype(np.float32),
            np.round(rng.normal(size=(n, 8)), 1).astype(np.float32),
            {"synth.phase": rng.integers(0, 9, n), "observation.ee_pose": rng.normal(size=(n, 7)).astype(np.float32)},
        )
        for i, n in enumerate([1, 2, 50, 130])
    ]
    assert json.dumps(shard_stats(eps, 20.0)) == json.dumps([episode_stats(e, 20.0) for e in eps])


def test_kinematic_mode_applies_synonyms_and_state_noise_as_physics_mode_does():
    """The language and observation-noise randomizers act the same in both modes (their draws say so)."""
    from synth.generate import make_worker
    from synth.language import substitute
    from synth.pipeline import Worker
    from synth.randomize import stream

    over = ["randomizers=[object_shape,object_pose,target,synonyms,state_noise]", "randomizers.synonyms.rate=1.0"]
    kin = make_worker(settings(compose_config(["mode=kinematic", *over])))
    phys = make_worker(settings(compose_config(over)))
    assert isinstance(phys, Worker)
    eps, _ = kin.block(list(range(6)))
    assert eps
    for e in eps:
        a = phys.prepare(e.attempt)
        assert e.instruction == a.instruction  # synonyms applied, the same words
        raw = phys.task.instruction(a.scene, stream(0, e.attempt, "instruction"))
        assert substitute(raw, a.scene.perturb.words) == e.instruction and a.scene.perturb.words
        clean = np.r_[load("panda").home, load("panda").gripper.stroke]
        assert not np.allclose(e.state[0], clean, atol=1e-6)  # the first written state carries the noise


@pytest.mark.parametrize("below", [0.0, 0.01])
def test_kinematic_grasps_are_the_planners_top_down_grasps(below):
    """task.grasp_below moves mode=kinematic's grasp exactly as it moves physics mode's (synth/grasps.py)."""
    from synth import grasps
    from synth.batch_planner.planner import targets

    s = settings(compose_config(["progress=false", "mode=kinematic", "seed=3", f"task.grasp_below={below}"]))
    emb = load(s.embodiment)
    scenes = [apply(list(s.randomizers), s.task.scene(), s.seed, e)[0] for e in range(8)]
    t = targets(s.task, scenes, emb)
    for w, sc in enumerate(scenes):
        args = (sc.objects[0], sc.table.height, emb.base_pose()[0][:2], *grasps.reach(emb.gripper))
        g = grasps.candidates(*args, below=below)[0]
        np.testing.assert_allclose(t.pos[w, 0, s.task.script().names.index("grasp")], g.pos, atol=1e-9)
        np.testing.assert_allclose(t.rot[w, 0], g.rot, atol=1e-9)


def test_pair_kinematic_dataset_has_physics_mode_schema(tmp_path):
    """bimanual_lift on a pair of arms: mode=kinematic writes physics mode's features and schema; the states are
    the planned targets of both arms; every phase in order; the bar ends up by the task's lift, level."""
    kin, phys = tmp_path / "k", tmp_path / "p"
    pair = ("task=bimanual_lift", "embodiment=aloha", "workers=1")
    gen(kin, "mode=kinematic", "n=6", *pair)
    gen(phys, "n=1", *pair)
    info_k = json.loads((kin / "meta" / "info.json").read_text())
    assert info_k["features"] == json.loads((phys / "meta" / "info.json").read_text())["features"]
    assert info_k["total_episodes"] == 6 and _frames(kin).schema == _frames(phys).schema
    eps = pq.read_table(sorted((kin / "meta" / "episodes").glob("*/*.parquet"))[0]).to_pylist()
    meta = json.loads(eps[0]["synth/meta"])
    assert meta["mode"] == "kinematic" and meta["check"]["kinematic"]["lifted"]
    assert min(meta["check"]["kinematic"]["clearance_m"].values()) >= 0 and meta["check"]["width"] > 0
    t = _frames(kin).to_pydict()
    ep0 = np.array(t["episode_index"]) == 0
    state, action = np.array(t["observation.state"])[ep0], np.array(t["action"])[ep0]
    assert state.shape[1] == action.shape[1] == 14
    joints = [c for c in range(14) if c not in (6, 13)]
    np.testing.assert_allclose(state[1:, joints], action[:-1, joints], atol=1e-6)  # the state is the planned target
    assert list(dict.fromkeys(np.array(t["synth.phase"])[ep0])) == list(range(6))
    obj = np.array(t["synth.object_pose"])[ep0]
    assert abs(obj[-1, 2] - obj[0, 2] - 0.15) < 0.005  # lifted by the task's lift (the last frame: holding it up)
    w, x, y, z = obj[-1, 3:].T
    assert abs(2 * (x * z - w * y)) < np.sin(np.radians(1.0))  # level
