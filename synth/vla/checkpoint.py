"""Checkpoints without pickle: weights and optimizer moments in safetensors, everything else in JSON.

A run directory holds checkpoints/step-NNNNNNN/{model,optimizer}.safetensors + state.json and a `latest`
file naming the newest complete one; `latest` is replaced atomically after the checkpoint is whole, so a
run killed mid-save resumes from the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from synth.errors import ConfigError

KEEP = 2  # checkpoints kept besides the newest


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(flat tensors "param.key", JSON rest) of an optimizer's state_dict."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        pid, k = name.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    for name, v in meta["scalars"].items():
        pid, k = name.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(
    run: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict, keep_every: int = 0
) -> Path:
    """Write checkpoint `step` and point `latest` at it; older ones beyond KEEP are removed, except those whose
    step is a multiple of `keep_every` (> 0), so a run's earlier models can still be evaluated."""
    ckpts = run / "checkpoints"
    final = ckpts / f"step-{step:07d}"
    tmp = ckpts / f".step-{step:07d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    tensors, meta = optimizer_tensors(opt)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "optimizer": meta}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _atomic_text(ckpts / "latest", final.name)
    for old in sorted(ckpts.glob("step-*"))[: -(KEEP + 1)]:
        if keep_every > 0 and int(old.name.split("-")[1]) % keep_every == 0:
            continue
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(run: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None."""
    pointer = Path(run) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "state.json").is_file() else None


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(model weights, state.json) of a checkpoint directory."""
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"policy={path}: no model.safetensors; give a run directory written by `synth train`")
    return _upgrade(load_file(str(path / "model.safetensors"))), json.loads((path / "state.json").read_text())


def _upgrade(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of checkpoints written before the conv encoder was grouped into stages of six layers
    (`vision.net.7.weight` is now `vision.net.1.1.weight`)."""
    out = {}
    for k, v in weights.items():
        m = re.fullmatch(r"vision\.net\.(\d+)\.(weight|bias)", k)
        out[f"vision.net.{int(m[1]) // 6}.{int(m[1]) % 6}.{m[2]}" if m else k] = v
    return out


def resolve(policy: str | Path, key: str = "policy") -> Path:
    """A checkpoint directory from a run directory or a checkpoint directory (`key=` names it in the error)."""
    p = Path(policy)
    if (p / "model.safetensors").is_file():
        return p
    found = latest(p)
    if found is None:
        raise ConfigError(f"{key}={policy}: no checkpoint there; give a run directory written by `synth train`")
    return found


def run_of(path: Path) -> Path:
    """The run directory of a checkpoint directory (run/checkpoints/step-N -> run)."""
    path = Path(path)
    return path.parent.parent if path.parent.name == "checkpoints" else path


def init_source(init: str | Path) -> Path:
    """The checkpoint directory `synth train init=` starts from (a run directory: its newest checkpoint)."""
    return resolve(init, "init")


def init_from(model: torch.nn.Module, source: Path) -> dict:
    """Copy into `model` every tensor of checkpoint `source` whose name and shape match one of the model's (e.g.
    from an image-free vision=false run: the action expert, the text and state parts); the rest keep their
    initialisation. Returns the record kept in the run's state: where from, which step, what was loaded and
    skipped, and the source run's datasets (their seeds stay out of evaluation)."""
    weights, state = load(source)
    own = model.state_dict()
    loaded = sorted(k for k, v in weights.items() if k in own and own[k].shape == v.shape)
    if not loaded:
        raise ConfigError(
            f"init={source}: no tensor matches this model in name and shape; init from a run of the "
            "same model= and text="
        )
    model.load_state_dict({k: weights[k] for k in loaded}, strict=False)
    return {
        "checkpoint": str(Path(source).resolve()),
        "step": int(state.get("step", 0)),
        "loaded": len(loaded),
        "skipped_source": sorted(k for k in weights if k not in loaded),  # in the source, not taken
        "fresh": sorted(k for k in own if k not in loaded),  # in this model, left at their initialisation
        "generate": [g for g in state.get("generate", []) if g],
    }
