"""An arm from an external MJCF file (e.g. a local MuJoCo Menagerie checkout) as modified-DH rows.

synth builds its robots from modified-DH rows (Craig), so an MJCF arm is read for its kinematics only:
MuJoCo places the model at q = 0 (every qpos 0, whatever the joints' `ref`), and the joint axes of the
chain, the base frame and the flange site are turned into rows, frame by frame as Craig does it: frame
i has z along joint i's axis and x along the common normal to the next axis (the flange site's z comes
last), so that row i is Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(theta_i + q_i) Tz(d_i). The meshes, inertias and
the MJCF's own gripper are not used: synth's arm is capsules along the rows, its gripper the adapter's.
Joint limits come from the joints' ranges, torques from their actuators' force ranges, link masses from
the bodies (each joint's body and those welded to it). Errors name the fix in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import ConfigError

EPS = 1e-6  # [1] or [m]: below this two axes are parallel, or the same line (float noise in vendor quats)


@dataclass(frozen=True)
class Row:
    """One modified-DH row read from the MJCF: lengths in m, angles in rad, mass in kg, effort in N m."""

    name: str
    a: float
    alpha: float
    d: float
    theta: float
    lower: float
    upper: float
    effort: float
    mass: float


def read(
    path: Path,
    flange: str,
    joints: list[str] | None = None,
    base_body: str | None = None,
    offset: tuple = ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),
):
    """(rows, flange row (a, alpha, d, theta)) of the hinge chain from `base_body` (default: the first
    joint's body's parent) to the flange: the site or body named `flange`, moved by `offset` (pos (3,) [m],
    quat (w, x, y, z)) in its frame, whose z axis points out of the flange; `joints` names the arm's joints
    in order (default: every hinge between the base and the flange)."""
    import mujoco

    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"mjcf {path}: MuJoCo cannot load it ({str(e).splitlines()[0]}); check the path") from e
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, flange)
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, flange)
    if site < 0 and body < 0:
        sites = [model.site(k).name for k in range(model.nsite)]
        raise ConfigError(f"mjcf {path}: no site or body '{flange}'; flange is a body or one of the sites {sites}")
    chain = _chain(model, int(model.site_bodyid[site]) if site >= 0 else body)
    hinges = [j for b in chain for j in range(model.njnt) if model.jnt_bodyid[j] == b]
    if joints is None:
        joints = [model.joint(j).name for j in hinges if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    ids = []
    for name in joints:
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if j < 0 or j not in hinges or model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ConfigError(f"mjcf {path}: '{name}' is not a hinge joint between the base and '{flange}'")
        ids.append(j)
    if not ids:
        raise ConfigError(f"mjcf {path}: no hinge joint between the base and '{flange}'")
    if base_body is None:
        base = int(model.body_parentid[model.jnt_bodyid[ids[0]]])
    else:
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, base_body)
        if base < 0:
            raise ConfigError(f"mjcf {path}: no body '{base_body}'; check base_body")
    data = mujoco.MjData(model)
    data.qpos[:] = 0.0
    mujoco.mj_kinematics(model, data)
    R0, p0 = data.xmat[base].reshape(3, 3), data.xpos[base]
    axes = [(R0.T @ (data.xanchor[j] - p0), R0.T @ data.xaxis[j]) for j in ids]  # in the base frame
    if site >= 0:
        fR, fp = data.site_xmat[site].reshape(3, 3), data.site_xpos[site]
    else:
        fR, fp = data.xmat[body].reshape(3, 3), data.xpos[body]
    pos, quat = np.asarray(offset[0], float), np.asarray(offset[1], float)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, quat / np.linalg.norm(quat))
    fp, fR = fp + fR @ pos, fR @ R.reshape(3, 3)
    site_R, site_p = R0.T @ fR, R0.T @ (fp - p0)
    params = dh_rows(axes, site_p, site_R)
    rows = []
    for k, j in enumerate(ids):
        lo, hi = model.jnt_range[j] if model.jnt_limited[j] else (-np.pi, np.pi)
        a, alpha, d, theta = params[k]
        rows.append(
            Row(model.joint(j).name, a, alpha, d, theta, float(lo), float(hi), _effort(model, j), _mass(model, j))
        )
    return rows, tuple(params[-1])


def dh_rows(axes: list[tuple[np.ndarray, np.ndarray]], site_p: np.ndarray, site_R: np.ndarray) -> list[tuple]:
    """Modified-DH rows (a_{i-1}, alpha_{i-1}, d_i, theta_i) of joint axes given as (point (3,), direction
    (3,)) in the base frame at q = 0, then the flange row that ends on the site's frame (site_p (3,) [m],
    site_R (3, 3)): len(axes) + 1 rows. The base frame is frame 0, so joint 1's axis must cross the base's
    x axis at a right angle (vertical through the base origin, for most arms)."""
    lines = [(np.asarray(p, float), _unit(u)) for p, u in axes] + [(site_p, site_R[:, 2])]
    o, x, z = np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])  # frame 0
    rows = []
    for i, (p, u) in enumerate(lines):
        foot = _meet(o, x, p, u)  # where x_{i-1} crosses this axis
        if foot is None:
            what = "joint 1's axis" if i == 0 else "an axis"
            raise ConfigError(
                f"mjcf: {what} does not cross the previous frame's x axis at a right angle; "
                "give base_body a frame whose z is that axis (most arms: the body under the first joint)"
            )
        a = float((foot - o) @ x)
        alpha = float(np.arctan2(np.cross(z, u) @ x, z @ u))
        if i + 1 < len(lines):
            o_new, x_new = _normal(p, u, *lines[i + 1], foot, x)
        else:
            o_new, x_new = site_p, site_R[:, 0]
        d = float((o_new - foot) @ u)
        theta = float(np.arctan2(np.cross(x, x_new) @ u, x @ x_new))
        rows.append((a, alpha, d, theta))
        o, x, z = o_new, x_new, u
    return rows


def _normal(p, u, q, v, foot, x_prev) -> tuple[np.ndarray, np.ndarray]:
    """Origin on axis (p, u) and x direction of the common normal from it to axis (q, v); for parallel axes
    the normal through `foot` (d = 0), for the same axis x_prev."""
    w = np.cross(u, v)
    if np.linalg.norm(w) < EPS:  # parallel
        r = (q - foot) - ((q - foot) @ u) * u
        if np.linalg.norm(r) < EPS:  # the same line: keep the previous x (theta = 0)
            return foot, _unit(x_prev - (x_prev @ u) * u)
        return foot, _unit(r)
    # closest points p + s u and q + t v
    b, dp = u @ v, q - p
    s = (dp @ u - b * (dp @ v)) / (1 - b * b)
    t = (b * (dp @ u) - dp @ v) / (1 - b * b)
    c1, c2 = p + s * u, q + t * v
    gap = c2 - c1
    if np.linalg.norm(gap) < 1e-7:  # they meet: x along u x v
        return c1, _unit(w)
    return c1, _unit(gap)


def _meet(o, x, p, u) -> np.ndarray | None:
    """The point where the line (o, x) crosses the line (p, u) at a right angle, or None."""
    if abs(x @ u) > 1e-6:
        return None
    t = (p - o) @ x  # the x line's point nearest the axis, if they meet
    foot = o + t * x
    r = foot - p
    if np.linalg.norm(r - (r @ u) * u) > 1e-6:
        return None
    return foot


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float) / np.linalg.norm(v)


def _chain(model, body: int) -> list[int]:
    """Bodies from the world down to `body` (the world excluded)."""
    out = []
    while body > 0:
        out.append(body)
        body = int(model.body_parentid[body])
    return out[::-1]


def _effort(model, joint: int) -> float:
    """[N m] the force limit of the actuator driving `joint` (its force range, else its control range times
    the gear for a motor), else the joint's actuator force range; 100 if none says."""
    for k in range(model.nu):
        if model.actuator_trnid[k, 0] == joint:
            if model.actuator_forcelimited[k]:
                return float(np.abs(model.actuator_forcerange[k]).max())
    if model.jnt_actfrclimited[joint]:
        return float(np.abs(model.jnt_actfrcrange[joint]).max())
    return 100.0


def _mass(model, joint: int) -> float:
    """[kg] the mass `joint` moves directly: its body and the bodies welded below it (no joint of their own)."""
    body = int(model.jnt_bodyid[joint])
    total, stack = 0.0, [body]
    while stack:
        b = stack.pop()
        total += float(model.body_mass[b])
        stack += [c for c in range(model.nbody) if model.body_parentid[c] == b and c != b and model.body_jntnum[c] == 0]
    return total
