"""Training batches from loaded sources (synth.vla.data.Source): per-robot normalization, padding to the model's
sizes, the sampler of a weighted mixture of sources, and the augmentations (a mirrored scene, translated images).

A sample is frame i of a source: its state (S,), its images (C, R, R, 3) uint8, and the action chunk
a[i : i + H] (H, A) (steps past the episode end repeat the last action and are masked out of the loss).
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from synth.errors import ConfigError
from synth.vla.data import AUX, MIRROR_SIGN, Source

HANDED = re.compile(r"\b(left|right)\b", re.IGNORECASE)  # an instruction a mirror image would contradict


class Normalizer:
    """Per-robot (mean, std) for state and action, padded to the model's sizes (padding: mean 0, std 1)."""

    def __init__(self, stats: dict[str, dict[str, dict[str, list[float]]]]):
        self.stats = stats  # {robot: {"state"|"action": {"mean": [...], "std": [...]}}}

    def _ms(self, robot: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.stats[robot][kind]
        return np.asarray(s["mean"], np.float32), np.maximum(np.asarray(s["std"], np.float32), 1e-3)

    def normalize(self, robot: str, kind: str, x: np.ndarray) -> np.ndarray:
        mean, std = self._ms(robot, kind)
        return (x - mean) / std

    def denormalize(self, robot: str, kind: str, x: np.ndarray) -> np.ndarray:
        mean, std = self._ms(robot, kind)
        return x[..., : len(mean)] * std + mean


def pad(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last axis to `size`."""
    if x.shape[-1] > size:
        raise ConfigError(f"a body has {x.shape[-1]} action/state dimensions; the model takes at most {size}")
    return np.concatenate([x, np.zeros((*x.shape[:-1], size - x.shape[-1]), x.dtype)], axis=-1)


class Sampler:
    """Random training batches from a weighted mixture of sources (numpy arrays; torch conversion by caller).

    prompt_ids[s] maps source s's task_index to a row of the prompt table.
    """

    def __init__(
        self,
        sources: list[Source],
        weights: list[float],
        prompt_ids: list[np.ndarray],
        norm: Normalizer,
        horizon: int,
        action_dim: int,
        state_dim: int,
        cameras: tuple[str, ...],
        seed: int,
        relative: bool = False,
        aux: bool = False,
    ):
        self.sources, self.prompt_ids, self.norm, self.aux = sources, prompt_ids, norm, aux
        w = np.asarray(weights, np.float64)
        self.p = w / w.sum()
        self.H, self.K, self.S, self.cameras, self.relative = horizon, action_dim, state_dim, cameras, relative
        self.rng = np.random.default_rng(seed)
        self.still = [None if s.still is None else np.flatnonzero(s.still) for s in sources]  # frames per source
        self.handed = [np.array([bool(HANDED.search(t)) for t in s.tasks], bool) for s in sources]  # per task

    def batch(self, size: int, still: bool = False, mirror: bool = False) -> dict[str, np.ndarray]:
        """state (B, S), state_mask, action (B, H, K), action_mask (B, H, K), dims (B, K), prompt (B,),
        images (B, C, R, R, 3) uint8 when cameras; aux (B, len(AUX)) and aux_mask (B, len(AUX)) when aux.
        still: only frames before the task object moves, from the sources that know (`locate` stage).
        mirror: each sample is mirrored with probability 1/2 (see mirror); for the aux targets only, as the
        state and the actions are left as they were."""
        p = self.p
        if still:
            p = p * np.array([pool is not None and len(pool) > 0 for pool in self.still])
            if p.sum() <= 0:
                raise ConfigError("locate_minutes= needs synth data (synth.object_pose) in the mixture")
            p = p / p.sum()
        which = self.rng.choice(len(self.sources), size=size, p=p)
        parts = [
            self._from(s, int((which == s).sum()), still, mirror)
            for s in range(len(self.sources))
            if (which == s).any()
        ]
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = self.rng.permutation(size)
        return {k: v[order] for k, v in out.items()}

    def _from(self, s: int, n: int, still: bool = False, mirror: bool = False) -> dict[str, np.ndarray]:
        src, robot = self.sources[s], self.sources[s].card["robot"]
        pool = self.still[s] if still else None
        if pool is not None:
            i = np.sort(pool[self.rng.integers(0, len(pool), n)])
        else:
            i = np.sort(self.rng.integers(0, src.frames, n))  # sorted: friendlier memmap reads
        steps = i[:, None] + np.arange(self.H)[None]
        valid = steps < src.stop[i, None]
        steps = np.minimum(steps, src.stop[i, None] - 1)
        A, S = src.action.shape[1], src.state.shape[1]
        chunk = chunk_of(src, i, steps, self.relative)
        out = {
            "state": pad(self.norm.normalize(robot, "state", src.state[i]), self.S),
            "state_mask": np.broadcast_to(np.arange(self.S) < S, (n, self.S)).copy(),
            "action": pad(self.norm.normalize(robot, "action", chunk), self.K),
            "dims": np.broadcast_to(np.arange(self.K) < A, (n, self.K)).copy(),
            "prompt": self.prompt_ids[s][src.task[i]],
        }
        out["action_mask"] = valid[:, :, None] & out["dims"][:, None, :]
        if src.imitate is not None:  # frames not imitated train the heads that locate the object, not the flow
            out["action_mask"] &= src.imitate[i][:, None, None]
        if self.cameras:
            out["images"] = np.stack([src.images[c][i] for c in self.cameras], axis=1)
        if self.aux:
            a = src.aux[i] if src.aux is not None else np.full((n, len(AUX)), np.nan, np.float32)
            out["aux"], out["aux_mask"] = np.nan_to_num(a), np.isfinite(a)
        if mirror and self.cameras and self.aux and src.aux_mirror is not None:
            flip = (self.rng.random(n) < 0.5) & ~self.handed[s][src.task[i]]
            out["images"], out["aux"] = mirror_samples(out["images"], out["aux"], flip, src.aux_mirror)
        return out


def mirror_samples(
    images: np.ndarray, aux: np.ndarray, flip: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The scene seen in a mirror on the robot's x-z plane (y -> -y) for the samples `flip` (B,) marks:
    images (B, C, R, R, 3) flipped left-right, standardized aux targets (B, len(AUX)) moved to the mirrored
    scene's values (offset: Source.aux_mirror). Every synth scene is laid out about that plane (the robot's base
    at y = 0, the front camera on its axis), so a mirrored frame is a frame synth could have rendered; it is
    not used where the instruction says left or right."""
    images, aux = images.copy(), aux.copy()
    images[flip] = images[flip][:, :, :, ::-1]
    aux[flip] = aux[flip] * MIRROR_SIGN + offset
    return images, aux


def chunk_of(src: Source, i: np.ndarray, steps: np.ndarray, relative: bool) -> np.ndarray:
    """Action chunks (n, H, A) at frames i; relative: minus the state at frame i (same layout as the action)."""
    chunk = src.action[steps]
    return chunk - src.state[i][:, None] if relative else chunk


def relative_stats(src: Source, horizon: int, samples: int = 20000, seed: int = 0) -> dict[str, np.ndarray]:
    """Mean and std (A,) of a[t+h] - s[t] over a sample of frames and every h < horizon."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, src.frames, min(samples, src.frames))
    steps = np.minimum(i[:, None] + np.arange(horizon)[None], src.stop[i, None] - 1)
    d = chunk_of(src, i, steps, True).reshape(-1, src.action.shape[1])
    return {"mean": d.mean(0), "std": d.std(0)}


def shifts(cameras: tuple[str, ...], moving: int, fixed: int) -> tuple[int, ...]:
    """Per camera, the random-translation budget [px]: `moving` for cameras carried by the arm (named *wrist),
    `fixed` for cameras fixed in the world. A fixed camera's pixel is a place on the table (about 1.2-1.7 cm
    per px at 64 px for pick_place's front camera), so shifting its image teaches the encoder that an object
    may be anywhere within a few centimetres of where it is seen: exactly the error a grasp cannot afford."""
    return tuple(moving if c.endswith("wrist") else fixed for c in cameras)


def augment(
    images: torch.Tensor, shift: int | tuple[int, ...], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random translation by up to `shift` px per image (replicate padding): (B, C, R, R, 3) uint8.
    shift: one budget for every camera, or one per camera (C,)."""
    if isinstance(shift, tuple):
        if len(set(shift)) > 1:
            return torch.cat([augment(images[:, c : c + 1], s, generator) for c, s in enumerate(shift)], dim=1)
        shift = shift[0] if shift else 0
    if shift <= 0:
        return images
    B, C, R = images.shape[:3]
    x = images.reshape(B * C, R, R, 3).permute(0, 3, 1, 2).float()
    x = F.pad(x, (shift,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * shift + 1, (B * C,), generator=generator)
    dy = torch.randint(0, 2 * shift + 1, (B * C,), generator=generator)
    rows = (dy[:, None] + torch.arange(R)[None])[:, None, :, None].expand(-1, 3, -1, R + 2 * shift)
    x = x.gather(2, rows)
    cols = (dx[:, None] + torch.arange(R)[None])[:, None, None, :].expand(-1, 3, R, -1)
    x = x.gather(3, cols)
    return x.permute(0, 2, 3, 1).reshape(B, C, R, R, 3).to(torch.uint8)
