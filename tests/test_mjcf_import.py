"""External MJCF arms (synth/mjcf_import.py): rows read from an MJCF reproduce MuJoCo's own forward
kinematics, and an adapter file makes a usable embodiment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from synth import embodiment
from synth.arm_kinematics import Kinematics, _row
from synth.errors import ConfigError
from synth.mjcf_import import read

mujoco = pytest.importorskip("mujoco")


def _quat(R: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R).reshape(9))
    return q


def _random_rot(rng) -> np.ndarray:
    q = rng.normal(size=4)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, q / np.linalg.norm(q))
    return R.reshape(3, 3)


def v(x) -> str:
    return " ".join(f"{float(c):.17g}" for c in np.ravel(x))


def _mjcf(frames: list[np.ndarray], axes: list[np.ndarray], site: np.ndarray, refs=None) -> str:
    """An MJCF chain: body k at world pose frames[k] (4, 4) at q = 0 with a hinge along axes[k] (its own
    frame), the site `flange` at world pose `site`; written body in body, as MJCF nests them."""
    refs = refs or [0.0] * len(frames)
    parent, xml, close = np.eye(4), [], []
    for k, (T, ax) in enumerate(zip(frames, axes, strict=True)):
        rel = np.linalg.inv(parent) @ T
        p, q = rel[:3, 3], _quat(rel[:3, :3])
        xml.append(
            f'<body name="l{k}" pos="{v(p)}" quat="{v(q)}">'
            f'<inertial pos="0 0 0" mass="{1 + k}" diaginertia="0.01 0.01 0.01"/>'
            f'<joint name="j{k}" type="hinge" axis="{v(ax)}" range="-2.9 2.9" ref="{refs[k]}"/>'
            f'<geom type="sphere" size="0.03"/>'
        )
        close.append("</body>")
        parent = T
    rel = np.linalg.inv(parent) @ site
    xml.append(f'<site name="flange" pos="{v(rel[:3, 3])}" quat="{v(_quat(rel[:3, :3]))}"/>')
    body = "".join(xml) + "".join(close[::-1])
    return f'<mujoco><compiler angle="radian"/><worldbody><body name="base">{body}</body></worldbody></mujoco>'


def _fk_rows(rows, flange, q: np.ndarray) -> np.ndarray:
    """(4, 4) flange pose of the rows at q (dof,)."""
    T = np.eye(4)
    for r, qi in zip(rows, q, strict=True):
        T = T @ _row(r.a, r.alpha, r.d, r.theta + qi)
    return T @ _row(*flange)


def _mujoco_site(path: Path, q: np.ndarray) -> np.ndarray:
    m = mujoco.MjModel.from_xml_path(str(path))
    d = mujoco.MjData(m)
    d.qpos[:] = q
    mujoco.mj_kinematics(m, d)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = d.site_xmat[0].reshape(3, 3), d.site_xpos[0]
    return T


def _random_chain(rng, n: int):
    """World frames and joint axes of a random n-joint arm whose first axis is vertical through the origin,
    with a parallel pair and an intersecting pair among the rest (the cases DH treats specially)."""
    frames, axes = [], []
    T = np.eye(4)
    T[:3, :3] = _random_rot(rng)
    T[:3, 3] = [0, 0, 0.3]
    frames.append(T)
    axes.append(T[:3, :3].T @ np.array([0.0, 0.0, 1.0]))  # world z in the body's frame
    for k in range(1, n):
        T = T.copy()
        T[:3, 3] = T[:3, 3] + rng.uniform(-0.15, 0.15, 3)
        T[:3, :3] = _random_rot(rng)
        world_axis = _unit(rng.normal(size=3))
        if k == 2:  # parallel to the previous
            world_axis = frames[-1][:3, :3] @ axes[-1]
        if k == 3:  # through the previous joint's anchor
            T[:3, 3] = frames[-1][:3, 3]
        frames.append(T)
        axes.append(T[:3, :3].T @ world_axis)
    site = np.eye(4)
    site[:3, :3], site[:3, 3] = _random_rot(rng), T[:3, 3] + rng.uniform(-0.1, 0.1, 3)
    return frames, axes, site


def _unit(v):
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("seed", range(5))
def test_rows_read_from_a_random_mjcf_chain_give_mujocos_forward_kinematics(tmp_path, seed):
    rng = np.random.default_rng(seed)
    frames, axes, site = _random_chain(rng, 6)
    refs = list(rng.uniform(-0.5, 0.5, 6))  # a joint's ref moves its zero: q = qpos either way
    path = tmp_path / "arm.xml"
    path.write_text(_mjcf(frames, axes, site, refs))
    rows, flange = read(path, "flange")
    assert [r.name for r in rows] == [f"j{k}" for k in range(6)]
    assert [r.mass for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r.lower == pytest.approx(-2.9) and r.upper == pytest.approx(2.9) for r in rows)
    for q in [np.zeros(6), *rng.uniform(-2.9, 2.9, (20, 6))]:
        ours, theirs = _fk_rows(rows, flange, q), _mujoco_site(path, q)
        np.testing.assert_allclose(ours[:3, 3], theirs[:3, 3], atol=1e-9)
        np.testing.assert_allclose(ours[:3, :3], theirs[:3, :3], atol=1e-9)


def test_an_arm_whose_first_axis_misses_the_base_is_refused_naming_base_body(tmp_path):
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.2, 0.3]  # vertical, but 20 cm to the side of the base's x axis
    path = tmp_path / "arm.xml"
    path.write_text(_mjcf([T], [np.array([0.0, 0.0, 1.0])], T))
    with pytest.raises(ConfigError, match="base_body"):
        read(path, "flange")
    with pytest.raises(ConfigError, match="flange is a body or one of the sites"):
        read(path, "tool")


def _panda_in_other_frames(tmp_path: Path) -> Path:
    """The shipped panda written as an MJCF whose bodies sit in frames turned away from DH's, each joint
    axis given in its body's own frame (as vendor files are), with an adapter file beside it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    panda = embodiment.load("panda")
    kin = Kinematics(panda, np.zeros(3))
    ch = kin.fk(np.zeros((1, panda.dof)))
    rng = np.random.default_rng(0)
    frames, axes = [], []
    for k in range(panda.dof):
        R = _random_rot(rng)
        T = np.eye(4)
        T[:3, :3] = ch.frames[0, k, :, :3] @ R
        T[:3, 3] = ch.frames[0, k, :, 3]
        frames.append(T)
        axes.append(R.T @ np.array([0.0, 0.0, 1.0]))
    flange = np.eye(4)
    flange[:3] = ch.hand[0]  # the hand frame (flange row and mount yaw)
    (tmp_path / "panda.xml").write_text(_mjcf(frames, axes, flange))
    raw = yaml.safe_load((embodiment._asset_dir() / "panda.yaml").read_text())
    adapter = {
        "name": "panda_mjcf",
        "description": "the panda read back from an MJCF with non-DH body frames",
        "arm": "single 7-DoF serial arm, read from MJCF",
        "mjcf": "panda.xml",
        "flange": "flange",
        "joint_defaults": {"velocity": 2.175, "acceleration": 10.0, "kp": 4000.0, "radius": 0.06},
        "joint_overrides": {f"j{k}": {"lower": j.lower, "upper": j.upper} for k, j in enumerate(panda.joints)},
        "home": raw["home"],
        "gripper": {**raw["gripper"], "mount_yaw": 0.0},  # the site is the hand frame already
    }
    (tmp_path / "panda_mjcf.yaml").write_text(yaml.safe_dump(adapter))
    return tmp_path


def test_an_mjcf_adapter_file_is_an_embodiment_with_the_same_kinematics(tmp_path, monkeypatch):
    d = _panda_in_other_frames(tmp_path)
    monkeypatch.setenv("SYNTH_EMBODIMENTS", str(d))
    embodiment.load.cache_clear()
    try:
        assert "panda_mjcf" in embodiment.names()
        ours, panda = embodiment.load("panda_mjcf"), embodiment.load("panda")
        assert ours.dof == 7 and ours.card(20.0)["robot"] == "panda_mjcf"
        q = np.random.default_rng(1).uniform(panda.lower, panda.upper, (50, 7))
        a, b = Kinematics(ours, np.zeros(3)).fk(q), Kinematics(panda, np.zeros(3)).fk(q)
        np.testing.assert_allclose(a.tcp, b.tcp, atol=1e-9)
        np.testing.assert_allclose(a.hand, b.hand, atol=1e-9)
    finally:
        embodiment.load.cache_clear()


def test_synth_generate_runs_an_mjcf_adapter_embodiment(tmp_path):
    d = _panda_in_other_frames(tmp_path / "bodies")
    env = {**os.environ, "SYNTH_EMBODIMENTS": str(d)}
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "synth.cli", "generate", "embodiment=panda_mjcf", "n=2", "workers=1", f"out={out}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    info = yaml.safe_load((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2
    card = yaml.safe_load((out / "meta" / "synth.json").read_text())
    assert "panda_mjcf" in str(card)


def test_an_adapter_whose_mjcf_is_missing_says_which_file(tmp_path, monkeypatch):
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump({"name": "gone", "mjcf": "nowhere/robot.xml"}))
    monkeypatch.setenv("SYNTH_EMBODIMENTS", str(tmp_path))
    embodiment.load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="nowhere/robot.xml does not exist"):
            embodiment.load("gone")
    finally:
        embodiment.load.cache_clear()


MENAGERIE = Path(os.environ.get("MUJOCO_MENAGERIE", "~/mujoco_menagerie")).expanduser()
ADAPTER = Path(__file__).parent.parent / "assets" / "mjcf_adapters" / "ur5e_menagerie.yaml"


@pytest.mark.skipif(
    not (MENAGERIE / "universal_robots_ur5e").exists(), reason="no local MuJoCo Menagerie checkout ($MUJOCO_MENAGERIE)"
)
def test_menagerie_ur5e_through_the_shipped_adapter(tmp_path, monkeypatch):
    monkeypatch.setenv("MUJOCO_MENAGERIE", str(MENAGERIE))
    (tmp_path / ADAPTER.name).write_text(ADAPTER.read_text())
    monkeypatch.setenv("SYNTH_EMBODIMENTS", str(tmp_path))
    embodiment.load.cache_clear()
    try:
        ours, ur5e = embodiment.load("ur5e_menagerie"), embodiment.load("ur5e")
    finally:
        embodiment.load.cache_clear()
    path = MENAGERIE / "universal_robots_ur5e" / "ur5e.xml"
    m = mujoco.MjModel.from_xml_path(str(path))
    base, flange = m.body("base").id, m.body("wrist_3_link").id
    d = mujoco.MjData(m)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, np.array([-1.0, 1.0, 0.0, 0.0]) / np.sqrt(2))
    q = np.random.default_rng(0).uniform(-3, 3, (20, 6))
    hand = Kinematics(ours, np.zeros(3)).fk(q).hand
    for k in range(len(q)):
        d.qpos[:6] = q[k]
        mujoco.mj_kinematics(m, d)
        R0, Rf = d.xmat[base].reshape(3, 3), d.xmat[flange].reshape(3, 3)
        want = R0.T @ (d.xpos[flange] + Rf @ np.array([0.0, 0.1, 0.0]) - d.xpos[base])
        np.testing.assert_allclose(hand[k, :, 3], want, atol=1e-6)
        np.testing.assert_allclose(hand[k, :, :3], R0.T @ Rf @ R.reshape(3, 3), atol=1e-6)
    # its home is the shipped ur5e's (to Menagerie's rounding of the published lengths)
    a, b = (Kinematics(e, np.zeros(3)).fk(np.array([e.home])).tcp for e in (ours, ur5e))
    np.testing.assert_allclose(a, b, atol=2e-3)
