"""Embodiments as data: a robot is a YAML file of published kinematics and limits.

A new body is a new file in ``assets/embodiments/``; nothing here is robot-specific.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from synth import actions
from synth.errors import ConfigError, closest


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
class Embodiment:
    """A single arm with a parallel gripper, described by its published kinematics."""

    name: str
    description: str
    arm: str
    joints: tuple[Joint, ...]
    flange: tuple[float, float, float, float]  # (a, alpha, d, theta) of the flange row
    home: tuple[float, ...]  # [rad]
    gripper: Gripper
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wrist_camera: tuple[tuple[float, float, float], float] = ((0.06, 0.0, 0.02), 70.0)

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def action_names(self) -> list[str]:
        return [j.name for j in self.joints] + ["gripper"]

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
        units = ["rad"] * self.dof + ["m"]
        joints = [j.name for j in self.joints]
        return {
            "robot": self.name,
            "description": self.description,
            "arm": self.arm,
            "dof": self.dof,
            "action": {
                "convention": action,
                "names": actions.names(action, joints),
                "units": actions.units(action, self.dof),
                "meaning": actions.MEANING[action] + "; the joint targets the physics runs are each reached by "
                "first-order hold (a linear ramp from the previous target) over one control period",
            },
            "state": {
                "names": self.action_names,
                "units": units,
                "meaning": "measured joint positions and gripper width",
            },
            "control_hz": float(control_hz),
            "gripper": {
                "kind": self.gripper.kind,
                "semantics": f"commanded opening width in metres: 0 closed, {self.gripper.stroke:g} fully open",
                "stroke_m": self.gripper.stroke,
                "force_n": self.gripper.force,
            },
            "joint_limits": {"lower": self.lower.tolist(), "upper": self.upper.tolist()},
            "cameras": list(cameras),
        }


def _asset_dir() -> Path:
    return Path(str(resources.files("synth.assets"))) / "embodiments"


def names() -> list[str]:
    """Embodiments shipped in ``assets/embodiments``."""
    return sorted(p.stem for p in _asset_dir().glob("*.yaml"))


@functools.cache
def load(name: str) -> Embodiment:
    """Read ``assets/embodiments/<name>.yaml``; unknown names list the options."""
    path = _asset_dir() / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown embodiment '{name}'{closest(name, names())}")
    raw = yaml.safe_load(path.read_text())
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


def replace(emb: Embodiment, **kw) -> Embodiment:
    return dataclasses.replace(emb, **kw)
