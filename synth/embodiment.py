"""Embodiments as data: a robot is a YAML file of published kinematics and limits.

A new body is a new file in ``assets/embodiments/``; nothing here is robot-specific. A file with `arms:`
mounts several single-arm files (each with a name prefix, a base position and a yaw): a bimanual pair.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from synth import actions
from synth.errors import ConfigError, closest
from synth.pose import base_pose


@dataclass(frozen=True)
class Joint:
    """One revolute joint from a modified-DH row (Craig): a_{i-1} [m], alpha_{i-1} [rad], d_i [m], and a
    constant offset theta [rad] between the joint's zero and the DH zero (0 for most published tables)."""

    name: str
    a: float
    alpha: float
    d: float
    lower: float  # [rad]
    upper: float  # [rad]
    velocity: float  # [rad/s]
    acceleration: float  # [rad/s^2]
    effort: float  # [N m]
    kp: float  # [N m/rad] position gain
    mass: float  # [kg] of the link this joint moves
    radius: float  # [m] capsule radius of that link
    theta: float = 0.0  # [rad] constant offset of this row's rotation
    armature: float = 0.1  # [kg m^2] reflected rotor inertia of the joint's drive


@dataclass(frozen=True)
class Gripper:
    """Parallel-jaw gripper mounted on the flange; widths in metres."""

    kind: str
    mount_yaw: float  # [rad] hand frame about the flange z axis
    tcp_offset: float  # [m] flange to the point between the fingertips
    finger_offset: float  # [m] flange to the finger joints
    finger_length: float  # [m]
    stroke: float  # [m] fully open width
    force: float  # [N] continuous grip force
    kp: float  # [N/m] per-finger position gain
    hand_mass: float  # [kg]
    finger_mass: float  # [kg] each
    palm: tuple[float, float, float] = (0.025, 0.095, 0.026)  # [m] half extents of the palm's collision box


@dataclass(frozen=True)
class Mount:
    """One arm of an embodiment: a single-arm `body` whose joint, actuator, site and camera names take
    `prefix`, its base at `base_pos` [m] (relative to the usual base anchor, as `Embodiment.base_pos`) turned
    by `base_yaw` [rad] about the vertical."""

    prefix: str
    body: Embodiment
    base_pos: tuple[float, float, float]
    base_yaw: float = 0.0

    def base_pose(self, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, float]:
        """World position (3,) [m] and yaw [rad] of this arm's base, moved by a scene's base `offset` (dx, dy [m],
        turn [rad]; `robot_base`)."""
        return base_pose(self.base_pos, self.base_yaw, offset)

    def moved(self, offset: tuple[float, float, float]) -> Mount:
        """This arm standing where a scene's base `offset` (dx, dy [m], turn [rad]) puts it."""
        pos, yaw = self.base_pose(offset)
        return dataclasses.replace(self, base_pos=(float(pos[0]), float(pos[1]), self.base_pos[2]), base_yaw=yaw)


@dataclass(frozen=True)
class Embodiment:
    """A single arm with a parallel gripper, described by its published kinematics; or, with `arms`, several
    such arms (a bimanual pair) whose joints, limits and home are the arms' in order, prefixed."""

    name: str
    description: str
    arm: str
    joints: tuple[Joint, ...]
    flange: tuple[float, float, float, float]  # (a, alpha, d, theta) of the flange row
    home: tuple[float, ...]  # [rad]
    gripper: Gripper
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wrist_camera: tuple[tuple[float, float, float], float] = ((0.06, 0.0, 0.02), 70.0)
    arms: tuple[Mount, ...] = ()  # empty: a single arm (this one, unprefixed, at base_pos)

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The arms in action order: for a single arm, itself with no prefix at `base_pos`."""
        return self.arms or (Mount("", self, self.base_pos, 0.0),)

    def base_pose(self, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, float]:
        """World position (3,) [m] and yaw [rad] of the robot's own frame, moved by a scene's base `offset`
        (dx, dy [m], turn [rad]): a single arm's base; a pair's anchor, which its arms' base_pos are from."""
        return base_pose(self.base_pos, 0.0, offset)

    def moved(self, offset: tuple[float, float, float]) -> Embodiment:
        """This embodiment standing where a scene's base `offset` (dx, dy [m], turn [rad]) puts it: a pair's arms
        each shifted and turned; a single arm's base shifted (its turn is left to its IK: pipeline.TurnedIK)."""
        if self.arms:
            return dataclasses.replace(self, arms=tuple(m.moved(offset) for m in self.arms))
        return dataclasses.replace(self, base_pos=self.mounts[0].moved(offset).base_pos)

    @property
    def dof(self) -> int:
        """Arm joints in all (grippers not counted)."""
        return len(self.joints)

    @property
    def action_names(self) -> list[str]:
        """Per arm: its joints, then its gripper (names prefixed by the arm's prefix)."""
        return [f"{m.prefix}{n}" for m in self.mounts for n in [*(j.name for j in m.body.joints), "gripper"]]

    @property
    def start(self) -> np.ndarray:
        """(A,) the targets before the first action: per arm its home [rad] and its gripper fully open [m]."""
        return np.concatenate([np.r_[m.body.home, m.body.gripper.stroke] for m in self.mounts])

    @property
    def scale(self) -> np.ndarray:
        """(A,) action -> actuator control: 1 per joint; 0.5 per gripper (its actuator takes width per finger)."""
        return np.concatenate([np.r_[np.ones(m.body.dof), 0.5] for m in self.mounts])

    @property
    def gripper_columns(self) -> np.ndarray:
        """(arms,) the action (and state) column of each arm's gripper."""
        return np.cumsum([m.body.dof + 1 for m in self.mounts]) - 1

    @property
    def arm_columns(self) -> np.ndarray:
        """The action (and state) columns of the arm joints: every column but the grippers'."""
        cols = np.arange(len(self.start))
        return cols[~np.isin(cols, self.gripper_columns)]

    @property
    def ee_names(self) -> list[str]:
        """observation.ee_pose names: per arm its TCP position [m] and quaternion in its own base frame."""
        pose = ["x", "y", "z", "qw", "qx", "qy", "qz"]
        return [f"{m.prefix}{n}" for m in self.mounts for n in pose]

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    @property
    def vmax(self) -> np.ndarray:
        return np.array([j.velocity for j in self.joints])

    @property
    def amax(self) -> np.ndarray:
        return np.array([j.acceleration for j in self.joints])

    def card(self, control_hz: float, action: str = "joint_pos", cameras: tuple[str, ...] = ()) -> dict:
        """The embodiment card: what a policy must know about this body, as plain JSON data."""
        names, units = [], []
        for m in self.mounts:
            names += [f"{m.prefix}{n}" for n in actions.names(action, [j.name for j in m.body.joints])]
            units += actions.units(action, m.body.dof)
        gr = self.gripper
        meaning = actions.MEANING[action]
        if len(self.mounts) > 1:
            meaning += " (each arm's block in its own base frame)" if action.startswith("ee_") else ""
        card = {
            "robot": self.name,
            "description": self.description,
            "arm": self.arm,
            "dof": self.dof,
            "action": {
                "convention": action,
                "names": names,
                "units": units,
                "meaning": meaning + "; the joint targets the physics runs are each reached by "
                "first-order hold (a linear ramp from the previous target) over one control period",
            },
            "state": {
                "names": self.action_names,
                "units": [u for m in self.mounts for u in ["rad"] * m.body.dof + ["m"]],
                "meaning": "measured joint positions and gripper width"
                + (", per arm in the order of `arms`" if self.arms else ""),
            },
            "control_hz": float(control_hz),
            "gripper": {
                "kind": gr.kind,
                "semantics": f"commanded opening width in metres: 0 closed, {gr.stroke:g} fully open",
                "stroke_m": gr.stroke,
                "force_n": gr.force,
            },
            "joint_limits": {"lower": self.lower.tolist(), "upper": self.upper.tolist()},
            "cameras": list(cameras),
        }
        if self.arms:
            card["arms"] = [
                {
                    "prefix": m.prefix,
                    "robot": m.body.name,
                    "dof": m.body.dof,
                    "base_pos": list(m.base_pos),
                    "base_yaw": m.base_yaw,
                    "action_columns": [k for k, n in enumerate(self.action_names) if n.startswith(m.prefix)],
                }
                for m in self.mounts
            ]
            card["ee_pose"] = "observation.ee_pose holds each arm's TCP pose in its own base frame, arm after arm"
        return card


def _asset_dir() -> Path:
    return Path(str(resources.files("synth.assets"))) / "embodiments"


def _dirs() -> list[Path]:
    """Where embodiment files are found: the shipped ones, then each directory in $SYNTH_EMBODIMENTS
    (os.pathsep-separated), e.g. one holding MJCF adapter files (see synth/mjcf_import.py)."""
    extra = [Path(d).expanduser() for d in os.environ.get("SYNTH_EMBODIMENTS", "").split(os.pathsep) if d]
    return [_asset_dir(), *extra]


def names() -> list[str]:
    """Embodiments in ``assets/embodiments`` and in the directories of $SYNTH_EMBODIMENTS."""
    return sorted({p.stem for d in _dirs() for p in d.glob("*.yaml")})


@functools.cache
def load(name: str) -> Embodiment:
    """Read ``<name>.yaml`` (the first found in ``assets/embodiments``, then $SYNTH_EMBODIMENTS); unknown
    names list the options."""
    path = next((d / f"{name}.yaml" for d in _dirs() if (d / f"{name}.yaml").exists()), None)
    if path is None:
        raise ConfigError(f"unknown embodiment '{name}'{closest(name, names())}")
    raw = yaml.safe_load(path.read_text())
    if "arms" in raw:
        return _load_arms(path, raw)
    if "mjcf" in raw:
        raw = _from_mjcf(path, raw)
    try:
        fl = raw["flange"]
        cams = raw.get("cameras", {})
        wrist = cams.get("wrist", {"pos": [0.06, 0.0, 0.02], "fovy": 70.0})
        return Embodiment(
            name=raw["name"],
            description=raw["description"],
            arm=raw["arm"],
            joints=tuple(Joint(**j) for j in raw["joints"]),
            flange=(fl["a"], fl["alpha"], fl["d"], fl.get("theta", 0.0)),
            home=tuple(float(q) for q in raw["home"]),
            gripper=Gripper(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["gripper"].items()}),  # type: ignore[arg-type]
            base_pos=tuple(raw.get("base_pos", (0.0, 0.0, 0.0))),
            wrist_camera=(tuple(wrist["pos"]), float(wrist["fovy"])),
        )
    except (KeyError, TypeError) as e:
        raise ConfigError(f"embodiment file {path} is malformed ({e}); compare it with panda.yaml") from e


def _from_mjcf(path: Path, raw: dict) -> dict:
    """An MJCF adapter file -> the fields of a DH file, the rows read from the MJCF by synth/mjcf_import.py.
    It has `mjcf:` (a path, relative to the file; ~ and $VARS expanded), `flange:` (a site or body whose z
    points out of the flange; optionally moved by `flange_pos:` [m] and `flange_quat:` (w, x, y, z) in its
    frame), `joint_defaults:` {velocity, acceleration, kp, radius} (what an MJCF does not say), optional
    `joints:`, `base_body:` and per-joint `joint_overrides:`, and name, description, arm, home and gripper
    as any embodiment file."""
    from synth import mjcf_import

    mjcf = Path(os.path.expandvars(str(raw["mjcf"]))).expanduser()
    mjcf = mjcf if mjcf.is_absolute() else path.parent / mjcf
    if not mjcf.exists():
        raise ConfigError(f"embodiment '{raw.get('name')}': its mjcf {mjcf} does not exist; fix `mjcf:` in {path}")
    try:
        offset = (raw.get("flange_pos", (0.0, 0.0, 0.0)), raw.get("flange_quat", (1.0, 0.0, 0.0, 0.0)))
        rows, flange = mjcf_import.read(mjcf, raw["flange"], raw.get("joints"), raw.get("base_body"), offset)
        defaults, overrides = raw["joint_defaults"], raw.get("joint_overrides", {})
        joints = []
        for r in rows:
            j = {
                "name": r.name,
                "a": r.a,
                "alpha": r.alpha,
                "d": r.d,
                "theta": r.theta,
                "lower": r.lower,
                "upper": r.upper,
                "effort": r.effort,
                "mass": max(r.mass, 0.05),
                **{k: defaults[k] for k in ("velocity", "acceleration", "kp", "radius")},
            }
            joints.append({**j, **overrides.get(r.name, {})})
    except KeyError as e:
        raise ConfigError(
            f"MJCF adapter {path} lacks {e}; it needs mjcf, flange, home, gripper and joint_defaults "
            "{velocity, acceleration, kp, radius}, as assets/mjcf_adapters/ur5e_menagerie.yaml has"
        ) from e
    a, alpha, d, theta = flange
    return {**raw, "joints": joints, "flange": {"a": a, "alpha": alpha, "d": d, "theta": theta}}


def _load_arms(path: Path, raw: dict) -> Embodiment:
    """Several single-arm files mounted side by side (`arms: [{prefix, file, base_pos, base_yaw}, ...]`)."""
    try:
        mounts = tuple(
            Mount(str(a["prefix"]), load(a["file"]), tuple(a.get("base_pos", (0, 0, 0))), float(a.get("base_yaw", 0)))
            for a in raw["arms"]
        )
        if len(mounts) < 2 or len({m.prefix for m in mounts}) < len(mounts) or any(m.body.arms for m in mounts):
            raise ValueError("give two or more single arms with distinct prefixes")
        first = mounts[0].body
        return Embodiment(
            name=raw["name"],
            description=raw["description"],
            arm=raw["arm"],
            joints=tuple(dataclasses.replace(j, name=m.prefix + j.name) for m in mounts for j in m.body.joints),
            flange=first.flange,
            home=tuple(q for m in mounts for q in m.body.home),
            gripper=first.gripper,
            wrist_camera=first.wrist_camera,
            arms=mounts,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"embodiment file {path} is malformed ({e}); compare it with aloha.yaml") from e


def replace(emb: Embodiment, **kw) -> Embodiment:
    return dataclasses.replace(emb, **kw)
