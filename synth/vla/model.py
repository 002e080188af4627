"""The VLA: a from-scratch conv encoder per camera, prompt tokens, a state token, and a DiT action expert
trained by flow matching (pi0's convention: x_t = t*noise + (1-t)*a, target velocity u = noise - a).

Shapes: B batch, C cameras, R image side [px], H horizon (action chunk length), K padded action size,
S padded state size, L prompt tokens, d model width. Actions and states enter normalized (zero mean, unit std
per dimension, from the dataset's stats); padded dimensions are zero and masked out of the loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    width: int = 256  # d
    depth: int = 4  # DiT blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    cnn: tuple[int, ...] = (32, 64, 128)  # channels of the stride-2 stages before the token stage
    horizon: int = 16  # H [control periods]
    action_dim: int = 32  # K: actions of every body are padded to this
    state_dim: int = 32  # S
    text: str = "minilm"  # "minilm" (frozen, cached features) or "hashed" (trainable word embedding)
    text_dim: int = 384  # feature size of the frozen encoder
    cameras: tuple[str, ...] = ()  # empty: no vision (the text-to-action stage)
    resolution: int = 96  # R
    relative: bool = False  # chunks are a[t+h] - s[t] (the policy adds the state back)
    keypoints: int = 0  # spatial-softmax keypoint tokens per camera (0: grid tokens only)
    aux: int = 0  # > 0: a head predicts this many auxiliary targets (see data.AUX) from the vision features
    aux_weight: float = 1.0  # its MSE's weight in the training loss
    aux_token: bool = False  # the aux prediction (gradient stopped) is also a context token of the action expert
    aux_grid: bool = True  # the aux head reads the pooled grid features too (False: only the keypoints' positions)
    aux_state: bool = True  # with aux_token, the aux head also reads the state token
    aux_cameras: tuple[str, ...] = ()  # the cameras the aux head reads (empty: every camera)
    near_cameras: tuple[str, ...] = ()  # a second head reads these cameras (and the state) and predicts the last
    #                                    `near` aux targets, the object from the hand where a grasp is aimed
    near: int = 0  # how many of the aux targets (the last ones) the near head predicts
    film: bool = False  # the prompt modulates every conv stage (FiLM, as RT-1): the instruction says which object
    text_tokens: int = 0  # > 0: the action expert reads the prompt as this many tokens, each a learned softmax-
    #                      weighted mean of its word tokens, instead of all of them (0): the embodiment part of a
    #                      prompt is ~55 of its ~75 tokens, and every DiT block projects each context token
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> ModelConfig:
        d = dict(d)
        d["cnn"], d["cameras"] = tuple(d["cnn"]), tuple(d["cameras"])
        d["aux_cameras"] = tuple(d.get("aux_cameras", ()))
        d["near_cameras"] = tuple(d.get("near_cameras", ()))
        return ModelConfig(**d)


SIZES = {
    "tiny": dict(width=256, depth=4, heads=4, cnn=(32, 64, 128), keypoints=16, film=True, text_tokens=8),
    "base": dict(width=640, depth=12, heads=10, cnn=(64, 128, 256), keypoints=32, film=True),
}


# ---------------------------------------------------------------------------------------------- encoders
class ConvEncoder(nn.Module):
    """(B, 3, R, R) in [-2, 2] -> (B, N, d) tokens on a (R / 2^(stages+1))^2 grid, shared across cameras.

    With `keypoints` K > 0 it also returns K spatial-softmax keypoints (B, K, 2) in [-1, 1] (Levine et al.
    2016): the expected image position of K learned feature maps, read at the second stage's resolution
    (R / 4), where a coarse token grid alone cannot say where a small object is to the pixel.
    With `film` (B, 2 * sum of stage widths) every stage's output h becomes h * (1 + gamma) + beta (Perez et al.
    2018; RT-1 conditions its EfficientNet on the instruction this way), so the keypoints can follow the object
    the prompt names rather than whichever object is most salient.
    """

    def __init__(self, channels: tuple[int, ...], width: int, keypoints: int = 0):
        super().__init__()
        stages, c_in = [], 3
        for c in (*channels, width):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, 3, stride=2, padding=1),
                    nn.GroupNorm(8, c),
                    nn.SiLU(),
                    nn.Conv2d(c, c, 3, padding=1),
                    nn.GroupNorm(8, c),
                    nn.SiLU(),
                )
            )
            c_in = c
        self.net = nn.Sequential(*stages)
        self.widths = (*channels, width)
        self.tap = min(2, len(channels))  # keypoints read after this many stages
        if keypoints:
            self.kp = nn.Conv2d(channels[self.tap - 1], keypoints, 1)
            self.kp_temp = nn.Parameter(torch.zeros(()))  # log inverse temperature of the softmax

    def forward(self, x: torch.Tensor, film: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        gb = film.split([w for w in self.widths for _ in range(2)], dim=-1) if film is not None else None
        kps, h = None, x
        for i, stage in enumerate(self.net):
            h = stage(h)
            if gb is not None:
                h = h * (1 + gb[2 * i][:, :, None, None]) + gb[2 * i + 1][:, :, None, None]
            if i + 1 == self.tap and hasattr(self, "kp"):
                logits = self.kp(h) * self.kp_temp.exp()  # (B, K, h, w)
                B, K, hh, ww = logits.shape
                p = logits.flatten(2).softmax(-1).view(B, K, hh, ww)
                ys = torch.linspace(-1.0, 1.0, hh, device=x.device)
                xs = torch.linspace(-1.0, 1.0, ww, device=x.device)
                kps = torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)
        return h.flatten(2).transpose(1, 2), kps


class Attention(nn.Module):
    """Multi-head attention of x (B, N, d) over c (B, M, d); mask (B, M) True where c is valid."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, d = x.shape
        q = self.q(x).view(B, N, self.heads, -1).transpose(1, 2)
        k, v = self.kv(c).view(B, c.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        m = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        return self.out(y.transpose(1, 2).reshape(B, N, d))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    """Self-attention over the chunk, cross-attention to the context, MLP; each gated by adaLN-Zero on time."""

    def __init__(self, d: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(d, elementwise_affine=False, eps=1e-6) for _ in range(3))
        self.self_attn, self.cross_attn = Attention(d, heads), Attention(d, heads)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        ada = nn.Linear(d, 9 * d)
        nn.init.zeros_(ada.weight)
        nn.init.zeros_(ada.bias)
        self.ada = nn.Sequential(nn.SiLU(), ada)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        s1, b1, g1, s2, b2, g2, s3, b3, g3 = self.ada(temb)[:, None].chunk(9, dim=-1)
        h = modulate(self.norms[0](x), b1, s1)
        x = x + g1 * self.self_attn(h, h)
        h = modulate(self.norms[1](x), b2, s2)
        x = x + g2 * self.cross_attn(h, ctx, ctx_mask)
        h = modulate(self.norms[2](x), b3, s3)
        return x + g3 * self.mlp(h)


def time_embedding(t: torch.Tensor, d: int) -> torch.Tensor:
    """Sinusoidal features of flow time t (B,) in [0, 1] -> (B, d)."""
    half = d // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


# ---------------------------------------------------------------------------------------------- the VLA
class VLA(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg, d = cfg, cfg.width
        for key in ("aux_cameras", "near_cameras"):
            unknown = set(getattr(cfg, key)) - set(cfg.cameras)
            if unknown:
                raise ValueError(
                    f"{key}={list(getattr(cfg, key))}: {sorted(unknown)} not among cameras={list(cfg.cameras)}"
                )
        if bool(cfg.near_cameras) != bool(cfg.near) or cfg.near >= max(cfg.aux, 1):
            raise ValueError(f"near_cameras={list(cfg.near_cameras)}, near={cfg.near}: set both, near < aux={cfg.aux}")
        # indices of the cameras the aux head and the near head read, in camera order
        self.aux_cams = [i for i, c in enumerate(cfg.cameras) if not cfg.aux_cameras or c in cfg.aux_cameras]
        self.near_cams = [i for i, c in enumerate(cfg.cameras) if c in cfg.near_cameras]
        if cfg.text == "minilm":
            self.text_proj: nn.Module = nn.Linear(cfg.text_dim, d)
        elif cfg.text == "hashed":
            from synth.vla.text import HashedWords

            self.text_proj = HashedWords(d)
        else:
            raise ValueError(f"text={cfg.text!r}: use 'minilm' or 'hashed'")
        if cfg.text_tokens:  # a score per (word token, pooled token), as film_pool's one score per word token
            self.text_pool = nn.Linear(d, cfg.text_tokens)
            self.text_embed = nn.Parameter(torch.randn(cfg.text_tokens, d) * 0.02)  # which pooled token it is
        self.state_proj = nn.Sequential(nn.Linear(2 * cfg.state_dim, d), nn.SiLU(), nn.Linear(d, d))
        n_types = 2 + len(cfg.cameras)  # text, state, one per camera
        self.type_embed = nn.Parameter(torch.zeros(n_types, d))
        if cfg.cameras:
            self.vision = ConvEncoder(cfg.cnn, d, cfg.keypoints)
            grid = cfg.resolution // 2 ** (len(cfg.cnn) + 1)
            self.vision_pos = nn.Parameter(torch.randn(grid * grid, d) * 0.02)
            if cfg.keypoints:  # a keypoint token: its (x, y) lifted to d, plus which keypoint it is
                self.kp_proj = nn.Sequential(nn.Linear(2, d), nn.SiLU(), nn.Linear(d, d))
                self.kp_embed = nn.Parameter(torch.randn(cfg.keypoints, d) * 0.02)
            if cfg.film:  # prompt pooled by a learned score -> (gamma, beta) per stage; `film` starts at zero: identity
                self.film_pool = nn.Linear(
                    d, 1
                )  # a score per prompt token (default init; the instruction's words matter most)
                self.film = nn.Linear(d, 2 * sum(self.vision.widths))
                nn.init.zeros_(self.film.weight)
                nn.init.zeros_(self.film.bias)
            if cfg.aux:  # pooled grid features and every keypoint (and, with the token, the state) -> aux targets
                n_in = len(self.aux_cams) * (d * cfg.aux_grid + 2 * cfg.keypoints) + d * (
                    cfg.aux_token and cfg.aux_state
                )
                self.aux_head = nn.Sequential(nn.Linear(n_in, d), nn.SiLU(), nn.Linear(d, cfg.aux - cfg.near))
                if cfg.near:  # pooled grid features, keypoints and the state (a hand camera needs the arm's pose)
                    n_in = len(self.near_cams) * (d + 2 * cfg.keypoints) + d
                    self.near_head = nn.Sequential(nn.Linear(n_in, d), nn.SiLU(), nn.Linear(d, cfg.near))
                if cfg.aux_token:
                    self.aux_proj = nn.Sequential(nn.Linear(cfg.aux, d), nn.SiLU(), nn.Linear(d, d))
        self.ctx_norm = nn.LayerNorm(d)
        self.action_in = nn.Linear(2 * cfg.action_dim, d)
        self.action_pos = nn.Parameter(torch.randn(cfg.horizon, d) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        final_ada, self.action_out = nn.Linear(d, 2 * d), nn.Linear(d, cfg.action_dim)
        for m in (final_ada, self.action_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        self.final_ada = nn.Sequential(nn.SiLU(), final_ada)

    def context(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioning tokens (B, M, d) and their mask (B, M) (see encode)."""
        ctx, mask, _ = self.encode(batch)
        return ctx, mask

    def encode(
        self, batch: dict[str, torch.Tensor], aux_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Conditioning tokens (B, M, d), their mask (B, M), and the auxiliary prediction (B, aux) or None.

        batch: text (B, L, text_dim) float features or (B, L) long ids; text_mask (B, L) bool;
        state (B, S) normalized, zero-padded; state_mask (B, S); images (B, C, R, R, 3) uint8 if cameras.
        aux_only: only the auxiliary prediction is wanted (the locate stage): only the aux cameras are encoded
        and the returned tokens and mask are empty; the near head's targets (if any) are then predicted as 0 and
        left out of the loss (see loss).
        """
        text, tmask = batch["text"], batch["text_mask"]
        if self.cfg.text == "hashed":
            tok = self.text_proj.embed(text)  # type: ignore[union-attr, operator]
        else:
            tok = self.text_proj(text)
        if self.cfg.text_tokens:  # (B, L, d) -> (B, text_tokens, d)
            w = self.text_pool(tok).masked_fill(~tmask[..., None], float("-inf")).softmax(1)
            pooled = w.transpose(1, 2) @ tok + self.text_embed + self.type_embed[0]
            parts, masks = [pooled], [tmask.new_ones(pooled.shape[:2])]
        else:
            parts, masks = [tok + self.type_embed[0]], [tmask]
        state = torch.cat([batch["state"] * batch["state_mask"], batch["state_mask"].float()], dim=-1)
        state_tok = self.state_proj(state)
        parts.append(state_tok[:, None] + self.type_embed[1])
        masks.append(torch.ones_like(tmask[:, :1]))
        aux = None
        if self.cfg.cameras:
            imgs = batch["images"]
            if aux_only and len(self.aux_cams) < imgs.shape[1]:
                imgs = imgs[:, self.aux_cams]
            B, C = imgs.shape[:2]
            x = imgs.reshape(B * C, *imgs.shape[2:]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            film = None
            if self.cfg.film:  # the prompt's tokens weighted by a learned score, once per camera image
                score = self.film_pool(tok).squeeze(-1).masked_fill(~tmask, float("-inf")).softmax(-1)
                film = self.film((score[..., None] * tok).sum(1)).repeat_interleave(C, dim=0)
            grid, kps = self.vision(x, film)
            if self.cfg.aux:
                kp = [kps.flatten(1).view(B, C, -1)] if kps is not None else []
                mean = grid.mean(1).view(B, C, -1)  # pooled grid features per camera
                per_cam = torch.cat([mean] * self.cfg.aux_grid + kp, -1)
                if not aux_only and len(self.aux_cams) < C:
                    per_cam = per_cam[:, self.aux_cams]
                feats_in = [per_cam.flatten(1)] + [state_tok] * (self.cfg.aux_token and self.cfg.aux_state)
                aux = self.aux_head(torch.cat(feats_in, -1))
                if self.cfg.near and aux_only:
                    aux = torch.cat([aux, aux.new_zeros(B, self.cfg.near)], -1)
                elif self.cfg.near:  # the object from the hand, from the near cameras and the state
                    near_cam = torch.cat([mean] + kp, -1)[:, self.near_cams]
                    aux = torch.cat([aux, self.near_head(torch.cat([near_cam.flatten(1), state_tok], -1))], -1)
                if aux_only:
                    return tok.new_zeros(B, 0, self.cfg.width), tmask.new_zeros(B, 0), aux
                if self.cfg.aux_token:  # where the model thinks things are, as one more token
                    parts.append(self.aux_proj(aux.detach())[:, None])
                    masks.append(torch.ones_like(tmask[:, :1]))
            feats = grid.view(B, C, -1, self.cfg.width) + self.vision_pos
            if kps is not None:  # (B*C, K, 2) -> K more tokens per camera
                kt = (self.kp_proj(kps) + self.kp_embed).view(B, C, -1, self.cfg.width)
                feats = torch.cat([feats, kt], dim=2)
            feats = feats + self.type_embed[2 : 2 + C, None]
            parts.append(feats.reshape(B, -1, self.cfg.width))
            masks.append(torch.ones(B, feats.shape[2] * C, dtype=torch.bool, device=imgs.device))
        return self.ctx_norm(torch.cat(parts, 1)), torch.cat(masks, 1), aux

    def velocity(
        self, x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor, dims: torch.Tensor
    ) -> torch.Tensor:
        """Flow velocity (B, H, K) at noisy chunk x (B, H, K), time t (B,); dims (B, K) marks real dimensions."""
        dmask = dims[:, None].float().expand_as(x)
        h = self.action_in(torch.cat([x * dmask, dmask], dim=-1)) + self.action_pos
        temb = self.time_mlp(time_embedding(t, self.cfg.width))
        for block in self.blocks:
            h = block(h, ctx, ctx_mask, temb)
        shift, scale = self.final_ada(temb)[:, None].chunk(2, dim=-1)
        return self.action_out(modulate(self.final_norm(h), shift, scale)) * dmask

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss (forward is the loss, so DistributedDataParallel can wrap the model)."""
        return self.loss(batch)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flow-matching MSE on the velocity over valid (step, dimension) entries, plus aux_weight times the
        auxiliary MSE where the batch has aux targets (self.last keeps both terms for logging).

        batch adds: action (B, H, K) normalized chunk; action_mask (B, H, K) bool; dims (B, K) bool;
        aux (B, aux) and aux_mask (B,) or (B, aux) when cfg.aux; with the key aux_only (and aux_mask (B, aux))
        the loss is the auxiliary MSE alone.
        """
        a = batch["action"]
        ctx, cmask, aux = self.encode(batch, aux_only="aux_only" in batch)
        if "aux_only" in batch:  # the `locate` stage: the vision encoder and aux head alone (no action expert)
            assert aux is not None, "aux_only needs a model with an aux head"
            if self.cfg.near:  # the near cameras were not encoded: their targets wait for the policy stage
                keep = torch.arange(self.cfg.aux, device=aux.device) < self.cfg.aux - self.cfg.near
                batch = {**batch, "aux_mask": _entries(batch["aux_mask"], aux) & keep}
            aux_loss = _aux_mse(aux, batch)
            self.last = {"aux": float(aux_loss.detach())}
            return aux_loss
        t = torch.distributions.Beta(1.5, 1.0).sample((a.shape[0],)).to(a.device) * 0.999 + 0.001
        noise = torch.randn_like(a)
        tt = t[:, None, None]
        x_t = tt * noise + (1 - tt) * a
        v = self.velocity(x_t, t, ctx, cmask, batch["dims"])
        m = batch["action_mask"].float()
        flow = ((v - (noise - a)) ** 2 * m).sum() / m.sum().clamp(min=1.0)
        self.last = {"flow": float(flow.detach())}
        if aux is None or "aux" not in batch:
            return flow
        aux_loss = _aux_mse(aux, batch)
        self.last["aux"] = float(aux_loss.detach())
        return flow + self.cfg.aux_weight * aux_loss

    @torch.no_grad()
    def sample(
        self, batch: dict[str, torch.Tensor], steps: int = 10, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalized action chunks (B, H, K) by `steps` Euler steps from t=1 (noise) to t=0; padding is 0."""
        ctx, cmask = self.context(batch)
        B = ctx.shape[0]
        x = noise if noise is not None else torch.randn(B, self.cfg.horizon, self.cfg.action_dim, device=ctx.device)
        dt = -1.0 / steps
        for i in range(steps):
            t = torch.full((B,), 1.0 + i * dt, device=ctx.device)
            x = x + dt * self.velocity(x, t, ctx, cmask, batch["dims"])
        return x * batch["dims"][:, None].float()


def _entries(mask: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
    """An aux mask (B,) per row or (B, aux) per entry as (B, aux) bool."""
    return (mask[:, None].expand_as(aux) if mask.ndim == 1 else mask).bool()


def _aux_mse(aux: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """MSE of the aux prediction (B, aux) over the entries batch["aux_mask"] marks: (B,) per row or (B, aux)."""
    am = _entries(batch["aux_mask"], aux).float()
    return ((aux - batch["aux"]) ** 2 * am).sum() / am.sum().clamp(min=1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build(size: str, **overrides) -> ModelConfig:
    """A ModelConfig of a named size with field overrides."""
    if size not in SIZES:
        from synth.errors import ConfigError, closest

        raise ConfigError(f"model={size}: unknown size{closest(size, list(SIZES))}")
    return ModelConfig(**{**SIZES[size], **overrides})
