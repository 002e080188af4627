"""MuJoCo Warp (`backend=mujoco_warp`): the worlds of one layout stepped as one mujoco_warp batch (nworld = W).

Per-world models differ in numbers (sizes, poses, masses, inertias, friction, damping, gains, colours): each
such field is put on the device as a batched model array (W, ...) (`put_model(batch_sizes=...)`), copied
from the worlds' own MjModels. What MuJoCo Warp cannot batch (geom types, meshes, the body tree, contact
filters, option flags) splits the worlds into groups with one layout each (`layout_key`), stepped one after
another. The loop is one device step at a time: controls are set on the device from a (W, chunk, nu) array,
`mujoco_warp.step` runs, and a kernel checks every step for a blow-up and records qpos, qvel, act and sensordata
of the steps asked for (`rollout(..., every=k)`: every k-th); every `chunk` steps the record comes back to the
host, so the copy shrinks k-fold. On a CUDA device the step after the first is captured
once as a CUDA graph and replayed (not run in this repository's CI, which has no GPU).

Differences from `MujocoCPU` that callers see:
- MuJoCo Warp computes in float32; states come back as float64 arrays of float32 values.
- time is state0's time plus k+1 timesteps, computed in float64 (the device clock is float32 and drifts by
  ~1e-3 s over 4,000 steps); a world whose physics blew up (non-finite, or |qpos|, |qvel| > 1e10 as in
  MuJoCo's own check) reads NaN from then on, which `diverged` reports. MuJoCo Warp does not reset it.
- A world that needs more contacts or constraints than allocated is run again with twice the room.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache

import mujoco
import numpy as np
import warp as wp

wp.config.quiet = True  # type: ignore[attr-defined]  # before mujoco_warp initializes Warp: no banner, no per-module compile lines

import mujoco_warp as mjw  # noqa: E402
from mujoco_warp._src import types as mjw_types  # noqa: E402
from mujoco_warp._src import warp_util  # noqa: E402

from synth.backends.warp_kernels import advance, record, set_ctrl  # noqa: E402

# sizes and arrays MuJoCo Warp's step does not read (names, rendering, bounding-volume trees, sleeping):
# worlds that differ only in them share a batch
_IGNORED_SIZES = {"nnames", "nnames_map", "npaths", "nbuffer", "nbvh", "nbvhstatic", "nbvhdynamic", "ntex", "ntexdata"}
_IGNORED_SIZES |= {"ngravcomp"}  # a count only: body_gravcomp itself is batched
# numeric_: custom numbers (a drawer's start opening); put_model reads only its one named option among them
_IGNORED_PREFIXES = ("name", "bvh_", "body_bvh", "tex_", "oct_", "body_octadr", "numeric_")
_IGNORED_ARRAYS = {"dof_M0", "dof_length"}  # dof_length weighs velocities only for sleeping


@cache
def batchable() -> tuple[str, ...]:
    """Model fields MuJoCo Warp can hold per world (spec shape ("*", ...)); put_model copies each from the
    MjModel field of the same name."""
    return tuple(
        f.name
        for f in dataclasses.fields(mjw_types.Model)
        if warp_util.is_array_spec(f.type) and getattr(f.type, "shape", ())[:1] == ("*",)
    )


@cache
def _structural() -> tuple[str, ...]:
    probe = mujoco.MjModel.from_xml_string("<mujoco/>")
    skip = set(batchable()) | _IGNORED_ARRAYS
    return tuple(
        k
        for k in dir(probe)
        if not k.startswith("_")
        and k not in skip
        and not k.startswith(_IGNORED_PREFIXES)
        and isinstance(getattr(probe, k), np.ndarray)
    )


def layout_key(model: mujoco.MjModel) -> bytes:
    """Worlds with equal keys share one MuJoCo Warp model: equal sizes, options and every array that is not
    batched (geom types, the body tree, meshes, contact filters, ...)."""
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(dir(model)):
        v = getattr(model, k)
        if k.startswith("n") and isinstance(v, int) and k not in _IGNORED_SIZES:
            h.update(f"{k}={v};".encode())
    for k in _structural():
        h.update(k.encode())
        h.update(np.ascontiguousarray(getattr(model, k)).tobytes())
    opt = model.opt
    for k in sorted(a for a in dir(opt) if not a.startswith("_")):
        v = getattr(opt, k)
        if isinstance(v, int | float | np.ndarray):
            h.update(f"{k}={np.asarray(v).tolist()};".encode())
    return h.digest()


def _static_poses(models: list[mujoco.MjModel], d) -> None:
    """Each world's poses of the geoms fixed to the world (table, target, tray) and initial body poses.

    `make_data` computes them once, from the one MjModel it is given, and the step never updates static
    geoms: without this every world would collide with world 0's table and tray."""
    fields = ("xquat", "xmat", "ximat", "geom_xpos", "geom_xmat")
    md = mujoco.MjData(models[0])  # one MjData serves every model of the layout
    per: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    for m in models:
        mujoco.mj_kinematics(m, md)
        for f in fields:
            per[f].append(getattr(md, f).copy())
    for f in fields:
        arr = getattr(d, f)
        arr.assign(np.stack(per[f]).reshape(arr.shape + tuple(getattr(arr.dtype, "_shape_", ()))))
    if models[0].nmocap:
        bodies = [np.flatnonzero(m.body_mocapid >= 0)[np.argsort(m.body_mocapid[m.body_mocapid >= 0])] for m in models]
        d.mocap_pos.assign(np.stack([m.body_pos[b] for m, b in zip(models, bodies, strict=True)]))
        d.mocap_quat.assign(np.stack([m.body_quat[b] for m, b in zip(models, bodies, strict=True)]))


class MujocoWarp:
    """Steps W worlds with MuJoCo Warp on `device` (default: Warp's preferred device, a GPU when there is one).

    chunk: at most this many steps run on the device before their records are copied back (memory:
    W * chunk / every * (nq+nv+na+ns) * 4 B).
    nconmax, njmax: contacts and constraint rows allocated per world (doubled and rerun on overflow).
    """

    name = "mujoco_warp"
    mesh_pool = True  # geom_dataid is batched: worlds of one model may point their mesh geoms at different meshes
    spread = 1 << 30  # Worker batches up to `batch` worlds whatever their plan lengths: a device step costs
    # about the same for 4 worlds or 4,000 (kernel launches), so padding is cheaper than another batch

    def __init__(self, device: str | None = None, chunk: int = 1000, nconmax: int = 64, njmax: int = 256):
        self.device = wp.get_device(device) if device else wp.get_preferred_device()
        self.chunk, self.nconmax, self.njmax = chunk, nconmax, njmax
        self.groups: list[int] = []  # worlds per layout group of the last rollout
        self.copied = 0  # [B] copied from the device to the host by the last rollout (reruns on overflow included)

    def rollout(
        self, models: list[mujoco.MjModel], state0: np.ndarray, ctrl: np.ndarray, every: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """state0: (W, nstate) mjSTATE_FULLPHYSICS; ctrl: (W, N, nu), N a multiple of `every`. Returns state
        (W, N // every, nstate) after steps every-1, 2*every-1, ... and sensordata (W, N // every, nsensordata)
        computed at the start of steps 0, every, ..., as `MujocoCPU.rollout`; only these leave the device."""
        W, N = ctrl.shape[:2]
        if N % every:
            raise ValueError(f"{N} steps are not a whole number of every={every}")
        state = np.empty((W, N // every, state0.shape[1]))
        sens = np.empty((W, N // every, models[0].nsensordata))
        groups: dict[bytes, list[int]] = {}
        for w, m in enumerate(models):
            groups.setdefault(layout_key(m), []).append(w)
        self.groups = [len(ws) for ws in groups.values()]
        self.copied = 0
        for ws in groups.values():
            s, d = self._group([models[w] for w in ws], state0[ws], ctrl[ws], every)
            state[ws], sens[ws] = s, d
        return state, sens

    def put_model(self, models: list[mujoco.MjModel]):
        """One device model for worlds of one layout: each field in which the worlds differ is a (W, ...)
        batched array holding every world's own values; the others are shared, from models[0]."""
        stacks = {}
        for f in batchable():
            x = np.stack([np.asarray(getattr(m, f)) for m in models])
            if not (x == x[:1]).all():
                stacks[f] = x
        with wp.ScopedDevice(self.device):
            wm = mjw.put_model(models[0], batch_sizes={f: len(models) for f in stacks})
            for f, x in stacks.items():
                arr = getattr(wm, f)
                arr.assign(x.reshape(arr.shape + tuple(getattr(arr.dtype, "_shape_", ()))))
        wm.opt.warn_overflow = 0  # overflow is read back per world and the group rerun with more room
        return wm

    def _host(self, arr) -> np.ndarray:
        """arr copied from the device, counted in `copied`."""
        out = arr.numpy()
        self.copied += out.nbytes
        return out

    def _group(self, models, state0, ctrl, every: int, scale: int = 1):
        m0, W, N = models[0], len(models), ctrl.shape[1]
        nq, nv, na, ns = m0.nq, m0.nv, m0.na, m0.nsensordata
        nx = nq + nv + na
        wm = self.put_model(models)
        with wp.ScopedDevice(self.device):
            d = mjw.make_data(m0, nworld=W, nconmax=self.nconmax * scale, njmax=self.njmax * scale)
            _static_poses(models, d)
            d.time.assign(state0[:, 0].astype(np.float32))
            d.qpos.assign(state0[:, 1 : 1 + nq].astype(np.float32))
            d.qvel.assign(state0[:, 1 + nq : 1 + nq + nv].astype(np.float32))
            if na:
                d.act.assign(state0[:, 1 + nq + nv : 1 + nx].astype(np.float32))
            recs = N // every
            R = -(-recs // -(-recs // max(1, self.chunk // every)))  # records per copy: <= chunk steps, evenly filled
            C = R * every  # steps per copy
            dctrl = wp.empty((W, C, m0.nu), dtype=float)
            phys, sens = wp.empty((W, R, nx), dtype=float), wp.empty((W, R, ns), dtype=float)
            idx, first = wp.zeros(2, dtype=int), wp.full(W, N, dtype=int)  # idx: (local step, chunk's first)
            act = d.act if na else wp.empty((W, 0), dtype=float)

            def one_step() -> None:
                wp.launch(set_ctrl, (W, m0.nu), inputs=[dctrl, idx], outputs=[d.ctrl])
                mjw.step(wm, d)
                wp.launch(
                    record, W, inputs=[d.qpos, d.qvel, act, d.sensordata, idx, every], outputs=[first, phys, sens]
                )
                wp.launch(advance, 1, outputs=[idx])

            graph = None
            state = np.repeat(state0[:, None], N // every, axis=1)  # components after act (mocap, ...) do not change
            sensor = np.empty((W, N // every, ns))
            for k0 in range(0, N, C):
                n = min(C, N - k0)
                dctrl.assign(np.ascontiguousarray(np.pad(ctrl[:, k0 : k0 + n], ((0, 0), (0, C - n), (0, 0)))))
                idx.assign(np.array([0, k0], dtype=np.int32))
                for k in range(n):
                    if graph is not None:
                        wp.capture_launch(graph)
                    elif self.device.is_cuda and k0 + k > 0:  # the first step compiled and loaded the kernels
                        with wp.ScopedCapture() as cap:
                            one_step()
                        graph = cap.graph
                        wp.capture_launch(graph)
                    else:
                        one_step()
                r0, r = k0 // every, n // every
                state[:, r0 : r0 + r, 1 : 1 + nx] = self._host(phys)[:, :r]
                sensor[:, r0 : r0 + r] = self._host(sens)[:, :r]
            overflow = self._host(d.overflow) != 0
            bad = self._host(first)  # (W,) the first step with a non-finite or runaway value, N for none
        if overflow.any():
            if scale >= 8:
                raise RuntimeError(f"MuJoCo Warp: contacts overflow {self.nconmax * scale} per world; raise nconmax")
            return self._group(models, state0, ctrl, every, scale * 2)
        state[:, :, 0] = state0[:, :1] + m0.opt.timestep * np.arange(every, N + 1, every)[None]
        for w in np.flatnonzero(bad < N):  # NaN from the first record after it on (as MuJoCo's reset shows)
            state[w, bad[w] // every :] = np.nan
        return state, sensor
