"""`mode=kinematic`: pick-and-place demonstrations planned, collision-checked and timed for a batch of
W attempts at once in numpy, with no physics and no rendering.

Per attempt the scene, the randomizer draws and the instruction are exactly physics mode's (same
streams). Then, batched over the attempts: top-down grasps from planners/grasps.py, damped-least-squares
IK of the key poses (hover, pre-grasp, grasp, lift, above the place, place) each from the previous one,
straight joint-space segments checked against the world with planners/capsules.py (the carried object
moves with the hand from the lift to the place), and minimum-jerk (quintic) timing of each segment
within the arm's velocity and acceleration limits at the control rate. A failed grasp option is
retried with the next closing direction; what still fails is `ik_failure` or `no_path`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.embodiment import Embodiment
from synth.kinematics import Kinematics
from synth.planners import capsules, grasps
from synth.planners.capsules import OBJECT, TABLE, TARGET, Body, Obstacles
from synth.scenes.pick_place import PickPlace
from synth.scenes.tabletop import ROBOT_BASE_Z
from synth.types import Scene

SUPPORTED = ("pick_place", "place_in_container")
STEP = 0.03  # [rad] largest joint motion between two collision samples of a segment
FLIP = 1.2  # [rad] a short straight move whose IK solution turns a joint further is a wrist flip
OPTIONS = 4  # grasp options (closing directions) tried per attempt
# the segments of a pick-and-place: (phase, start key, end key); "hold" keeps the arm still
SEGMENTS = (
    ("approach", "home", "hover"),
    ("pre_grasp", "hover", "pre"),
    ("grasp", "pre", "grasp"),
    ("close", "grasp", "grasp"),
    ("lift", "grasp", "lift"),
    ("transit", "lift", "above"),
    ("place", "above", "place"),
    ("open", "place", "place"),
    ("retreat", "place", "above"),
)
KEYS = ("hover", "pre", "grasp", "lift", "above", "place")
CARRIED = ("lift", "transit", "place")  # the object moves with the hand in these phases


def base_position(emb: Embodiment) -> np.ndarray:
    """(3,) robot base in the world [m] (on its pedestal)."""
    return np.array([emb.base_pos[0], emb.base_pos[1], ROBOT_BASE_Z + emb.base_pos[2]])


def quat_from_mat(R: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z), w >= 0, of rotation matrices R (N, 3, 3) (Shepperd's method)."""
    m = R.reshape(-1, 3, 3)
    r00, r01, r02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    r10, r11, r12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    r20, r21, r22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    big = 0.5 * np.sqrt(
        np.maximum(1.0 + np.stack([r00 + r11 + r22, r00 - r11 - r22, r11 - r00 - r22, r22 - r00 - r11]), 1e-12)
    )
    case = np.argmax(big, 0)
    f = 0.25 / big
    cand = np.stack(
        [
            [big[0], (r21 - r12) * f[0], (r02 - r20) * f[0], (r10 - r01) * f[0]],
            [(r21 - r12) * f[1], big[1], (r01 + r10) * f[1], (r02 + r20) * f[1]],
            [(r02 - r20) * f[2], (r01 + r10) * f[2], big[2], (r12 + r21) * f[2]],
            [(r10 - r01) * f[3], (r02 + r20) * f[3], (r12 + r21) * f[3], big[3]],
        ]
    )  # (case, component, N)
    q = cand[case, :, np.arange(len(m))]
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass
class Targets:
    """Key TCP poses of W attempts: pos (W, 6, 3) [m] in KEYS order, rot (W, 3, 3), width (W,) [m] the
    object width across the fingers, has (W,) bool whether the attempt has this grasp option."""

    pos: np.ndarray
    rot: np.ndarray
    width: np.ndarray
    has: np.ndarray


def targets(task: PickPlace, scenes: list[Scene], emb: Embodiment, option: int) -> Targets:
    """The key poses of grasp option `option` (top-down, the option-th closing direction) per scene."""
    base = base_position(emb)
    gr = emb.gripper
    max_depth, max_width = gr.tcp_offset - gr.finger_offset - 0.008, gr.stroke - 0.012
    W = len(scenes)
    pos, rot = np.zeros((W, 6, 3)), np.tile(np.eye(3), (W, 1, 1))
    width, has = np.zeros(W), np.zeros(W, bool)
    for w, sc in enumerate(scenes):
        obj = sc.objects[0]
        cands = grasps.candidates(obj, sc.table.height, base[:2], max_depth, max_width, tilts=(0.0,))
        if option >= len(cands):
            continue
        g = cands[option]
        z = g.rot[:, 2]
        centre = np.array([obj.xy[0], obj.xy[1], sc.table.height + obj.half_height])
        place = np.array([*task.place_xy(sc), task.release_z(sc)]) - (centre - g.pos)
        pos[w] = [
            g.pos - task.hover * z,
            g.pos - task.pre_grasp * z,
            g.pos,
            g.pos + [0, 0, task.lift],
            place + [0, 0, task.above_place],
            place,
        ]
        rot[w], width[w], has[w] = g.rot, g.width, True
    return Targets(pos, rot, width, has)


def take(obs: Obstacles, idx: np.ndarray) -> Obstacles:
    """The obstacles of the worlds idx."""
    return Obstacles(*(getattr(obs, f)[idx] for f in Obstacles.__dataclass_fields__))


class Planner:
    """Plans pick-and-places for batches of scenes; one per worker process."""

    def __init__(self, task: PickPlace, emb: Embodiment, control_hz: float):
        self.task, self.emb, self.hz = task, emb, control_hz
        self.base = base_position(emb)
        self.kin = Kinematics(emb, self.base)
        self.body = Body.of(emb)
        self.base_T = self.kin.base

    # ------------------------------------------------------------------ inverse kinematics
    def solve(self, t: Targets) -> tuple[np.ndarray, np.ndarray]:
        """(q (W, 7 keys incl. home, dof), ok (W,)): the key configurations, each solved from the previous."""
        W = len(t.pos)
        q = np.empty((W, 1 + len(KEYS), self.emb.dof))
        q[:, 0] = self.kin.home
        ok = t.has.copy()
        for k, name in enumerate(KEYS):
            sol, conv = self.kin.ik(t.pos[:, k], t.rot, q[:, k], iters=30)
            ok &= conv
            if name in ("pre", "grasp", "lift", "place"):
                ok &= np.abs(sol - q[:, k]).max(1) <= FLIP
            q[:, k + 1] = sol
        return q, ok

    # ------------------------------------------------------------------ collision
    def segment_clear(
        self,
        q0: np.ndarray,
        q1: np.ndarray,
        obs: Obstacles,
        allowed: np.ndarray,
        margin: float,
        width: np.ndarray,
        carry: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """(W,) the smallest clearance [m] minus `margin` along the straight segments q0 -> q1 (W, dof),
        sampled every STEP of each world's largest joint motion (the start excluded); `carry` is
        (centres (W, K, 3) in the hand frame, radii (W, K)) of a carried object."""
        W, dof = q0.shape
        n = np.maximum(1, np.ceil(np.abs(q1 - q0).max(1) / STEP)).astype(int)  # samples per world
        N = int(n.max())
        s = np.minimum(np.arange(1, N + 1)[None, :] / n[:, None], 1.0)  # (W, N); a world's own samples
        qs = (q0[:, None] + s[..., None] * (q1 - q0)[:, None]).reshape(W * N, dof)
        ch = self.kin.fk(qs)
        frames = capsules._frames(ch, self.base_T).reshape(W, N, dof + 2, 4, 4)
        clear = capsules.robot_clearance(self.body, frames, width, obs, allowed, margin)
        if carry is not None:
            local, r = carry
            hand = ch.hand.reshape(W, N, 4, 4)
            obj = np.einsum("wnij,wkj->wnki", hand[..., :3, :3], local) + hand[:, :, None, :3, 3]
            rad = np.repeat(r[:, None], N, axis=1).reshape(W, -1)
            clear = np.minimum(clear, capsules.clearance(obj.reshape(W, -1, 3), rad, obs, allowed, margin))
        return clear - margin

    def check(self, q: np.ndarray, t: Targets, scenes: list[Scene], obs: Obstacles) -> dict[str, np.ndarray]:
        """Clearance [m] beyond the required margin per checked phase, each (W,); negative = collision."""
        role = obs.role
        obj0, table, target = role == OBJECT, role == TABLE, role == TARGET
        k = {name: i for i, name in enumerate(("home", *KEYS))}
        open_w = np.full(len(q), self.emb.gripper.stroke)
        # the carried object in the hand frame at the grasp
        hand = self.kin.fk(q[:, k["grasp"]]).hand
        local, radius = [], []
        for w, sc in enumerate(scenes):
            obj = sc.objects[0]
            c, r = capsules.object_spheres(obj)
            centre = np.array([obj.xy[0], obj.xy[1], sc.table.height + obj.half_height])
            world = c @ rot_z(obj.yaw).T + centre
            local.append((world - hand[w, :3, 3]) @ hand[w, :3, :3])
            radius.append(r)
        carry = (np.stack(local), np.stack(radius))
        out = {
            "approach": self.segment_clear(q[:, 0], q[:, k["hover"]], obs, np.zeros_like(obj0), 0.01, open_w),
            "pre_grasp": self.segment_clear(q[:, k["hover"]], q[:, k["pre"]], obs, obj0 | table, 0.003, open_w),
            "grasp": self.segment_clear(q[:, k["pre"]], q[:, k["grasp"]], obs, obj0 | table, 0.003, open_w),
            "lift": self.segment_clear(q[:, k["grasp"]], q[:, k["lift"]], obs, obj0 | table, 0.01, t.width, carry),
            "transit": self.segment_clear(q[:, k["lift"]], q[:, k["above"]], obs, obj0, 0.01, t.width, carry),
            "place": self.segment_clear(
                q[:, k["above"]], q[:, k["place"]], obs, obj0 | table | target, 0.003, t.width, carry
            ),
            "retreat": self.segment_clear(
                q[:, k["place"]], q[:, k["above"]], obs, obj0 | table | target, 0.003, open_w
            ),
        }
        return out

    # ------------------------------------------------------------------ the batch
    def plan(self, scenes: list[Scene]) -> dict:
        """Plans for every scene: {"ok" (W,), "reason" [str], "q" (W, 7, dof) key configurations, "width" (W,),
        "rot" (W, 3, 3), "clearance" {phase: (W,)}, "option" (W,)}."""
        W = len(scenes)
        obs = capsules.obstacles(scenes)
        q = np.tile(self.kin.home, (W, 1 + len(KEYS), 1))
        width, rot = np.zeros(W), np.tile(np.eye(3), (W, 1, 1))
        ok, option = np.zeros(W, bool), np.full(W, -1)
        reason = np.array(["ik_failure"] * W, dtype=object)
        clear = {
            p: np.full(W, np.nan) for p in ("approach", "pre_grasp", "grasp", "lift", "transit", "place", "retreat")
        }
        for opt in range(OPTIONS):
            idx = np.flatnonzero(~ok)
            if not len(idx):
                break
            sub = [scenes[i] for i in idx]
            t = targets(self.task, sub, self.emb, opt)
            if not t.has.any():
                break
            qs, solved = self.solve(t)
            keep = np.flatnonzero(solved)
            if not len(keep):
                continue
            sub_t = Targets(t.pos[keep], t.rot[keep], t.width[keep], t.has[keep])
            c = self.check(qs[keep], sub_t, [sub[i] for i in keep], take(obs, idx[keep]))
            free = np.all([v >= 0 for v in c.values()], axis=0)
            w = idx[keep]
            reason[w] = np.where(free, "", "no_path")
            for p, v in c.items():
                clear[p][w] = v
            w_ok = w[free]
            ok[w_ok], option[w_ok] = True, opt
            q[w_ok], width[w_ok], rot[w_ok] = qs[keep][free], t.width[keep][free], t.rot[keep][free]
        return {
            "ok": ok,
            "reason": list(reason),
            "q": q,
            "width": width,
            "rot": rot,
            "clearance": clear,
            "option": option,
        }
