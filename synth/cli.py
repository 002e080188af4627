"""The `synth` command: generate, inspect, view, and listings of what is registered."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from synth import listings
from synth.errors import ConfigError
from synth.keys import check_flags, help_text, key, parse, wrap

USAGE = """usage: synth <command> [key=value ...]

commands:
  generate     make a dataset: synth generate task=pick_place n=1e6 out=data/pick_place
  train        pretrain the bundled VLA: synth train data=<dir> out=runs/pp [steps= minutes= model=tiny|base]
  eval         closed-loop success per variation axis: synth eval policy=runs/pp episodes=50
  merge        join the parts of a part=i/K run: synth merge out=<dir> parts=[p0,p1,...] (or parts='runs/p*')
  inspect      counts, success rate, failure reasons, randomization coverage: synth inspect out=<dir>
  view         write an mp4 of one episode: synth view out=<dir> episode=3
  verify       check every committed file's size and checksum and LeRobot's invariants: synth verify out=<dir>
  repair       cut a damaged dataset back to its last intact commit: synth repair out=<dir>
  export-usd   one attempt's scene as a USD stage for Isaac Sim: synth export-usd task=pick_place seed=3 attempt=0
  tasks        list tasks and their task.<key>= settings (synth tasks <name>: each described)
  randomizers  list randomizers and their ranges (synth randomizers <name>: each described)
  embodiments  list embodiments
  axes         list eval's variation axes

`synth <command> --help` lists its keys. generate's overrides use Hydra's syntax (randomizers=[lighting,table],
randomizers.lighting.intensity=[0.2,0.9], +experiment=rendered).
"""


@dataclass(frozen=True)
class ViewArgs:
    """Keys of `synth view`."""

    out: str = key("", "dataset directory (required)")
    episode: int = key(0, "episode index", low=0)
    camera: str = key("", "camera shown (default: every camera side by side)")
    path: str = key("", "mp4 written (default <out>/views/episode_<index>.mp4)")


@dataclass(frozen=True)
class DatasetArgs:
    """Keys of `synth inspect`, `synth verify` and `synth repair`."""

    out: str = key("", "dataset (or collection) directory (required)")


@dataclass(frozen=True)
class MergeArgs:
    """Keys of `synth merge`."""

    out: str = key("", "the merged dataset's directory (required)")
    parts: str = key("", "the parts' directories: [p0,p1,...] or a glob such as 'runs/p*' (required)")
    n: str = key("", "episodes, e.g. 1e6 (default: the n the parts were run with)")


def _stage_path(out: str) -> str:
    if not out.endswith((".usda", ".usd", ".usdc")):
        raise ConfigError(f"out={out!r}: give a stage path ending in .usda, .usd or .usdc")
    return out


@dataclass(frozen=True)
class ExportArgs:
    """Keys of `synth export-usd` besides the scene keys of `synth generate`."""

    attempt: int = key(0, "attempt index: the scene of attempt i of `synth generate` with the same keys", low=0)
    out: str = key("scene.usda", "the stage: .usda (text) or .usd/.usdc (binary)", check=_stage_path)
    plan: bool = key(True, "also write <out>.plan.json: planned joint targets and MuJoCo's outcome")
    backend: str = key(
        "none", "none, or isaac: replay the plan in Isaac Sim (needs isaacsim)", choices=("none", "isaac")
    )


def _help(args: list[str]) -> bool:
    return any(a in ("-h", "--help", "help") for a in args)


def _names(args: list[str]) -> list[str]:
    """The plugin names given to `synth tasks` or `synth randomizers` (none with --help: the listing)."""
    return [] if _help(args) else args


def cmd_train(args: list[str]) -> int:
    from synth.vla.train import TrainConfig, train

    if _help(args):
        usage = "synth train data=<dir> out=runs/<name> [key=value ...]   (data=[a,b] weights=[0.7,0.3] mixes)"
        print(help_text(TrainConfig, usage, "Resumes from the newest checkpoint in out=."))
        return 0
    train(parse(TrainConfig, args, "train"))
    return 0


def cmd_eval(args: list[str]) -> int:
    from synth.vla.evaluate import EvalConfig, evaluate

    if _help(args):
        usage = "synth eval policy=runs/<name> [episodes=50 axes=[in_distribution,lighting]] | data=<dataset>"
        print(help_text(EvalConfig, usage, "`synth axes` lists the variation axes."))
        return 0
    evaluate(parse(EvalConfig, args, "eval"))
    return 0


def generate_help() -> str:
    from synth.config import PLUGIN_KEYS, GenerateConfig, compose_config
    from synth.embodiment import names
    from synth.registry import RANDOMIZERS, TASKS

    default = compose_config([])
    picked = list(default.randomizers)
    rest = [n for n in RANDOMIZERS.names() if n not in picked]
    chosen = {**default.hydra.runtime.choices, "randomizers": "[" + ", ".join(picked) + "]"}
    plugins = "\n".join(
        f"  {k}={chosen[k]}\n      {GenerateConfig.__dataclass_fields__[k].metadata['help']}" for k in PLUGIN_KEYS
    )
    footer = (
        f"plugins:\n{plugins}; the others: {', '.join(rest)}\n\n"
        "+experiment=rendered: two cameras at 128x128; +experiment=smoke: 8 episodes, one process.\n"
        "Several bodies or rates, one dataset part each: embodiment=[panda,ur5e] or control_hz=[10,20].\n\n"
        f"tasks: {', '.join(TASKS.names())}\n"
        "  (`synth tasks`: what each does; `synth tasks <name>`: its keys described)\n"
        f"embodiments: {', '.join(names())}"
    )
    return help_text(GenerateConfig, "synth generate [key=value ...]   (Hydra overrides)", footer, skip=PLUGIN_KEYS)


def cmd_generate(args: list[str]) -> int:
    if _help(args):
        print(generate_help())
        return 0
    from synth.collection import generate as generate_collection
    from synth.collection import split
    from synth.config import check_keys, compose_config, settings

    check_keys(args)

    part_list, rest = split(args)
    if part_list:  # several bodies or rates: one LeRobot part per combination (synth/collection.py)
        generate_collection(part_list, rest)
        return 0
    s = settings(compose_config(args))
    from synth.executors import check_address
    from synth.generate import check_out, generate

    check_address(s)  # a Ray cluster that does not answer: refused before out= is created
    check_out(s.out)
    generate(s)
    return 0


def cmd_merge(args: list[str]) -> int:
    if _help(args):
        print(help_text(MergeArgs, "synth merge out=<dir> parts=[p0,p1,...]"))
        return 0
    a = parse(MergeArgs, args, "merge")
    if not a.out or not a.parts:
        raise ConfigError("give the merged dataset and the parts: synth merge out=<dir> parts=[p0,p1,...]")
    from synth.config import _count
    from synth.merge import merge

    merge(a.out, a.parts, _count(a.n) if a.n else None)
    return 0


def _each_part(args: list[str], command: str, cls: type = DatasetArgs) -> list[Path] | None:
    """The dataset named by out= (a collection: each of its parts), or None after printing --help."""
    if _help(args):
        print(help_text(cls, f"synth {command} out=<dir>"))
        return None
    a = parse(cls, args, command)
    if not a.out:
        raise ConfigError(f"give the dataset: synth {command} out=<dir>")
    from synth.collection import parts

    return parts(a.out) or [Path(a.out)]


def cmd_inspect(args: list[str]) -> int:
    from synth.dataset.summary import summarize

    for part in _each_part(args, "inspect") or []:
        print(summarize(str(part)))
    return 0


def cmd_verify(args: list[str]) -> int:
    from synth.dataset.repair import verify

    ok = True
    for part in _each_part(args, "verify") or []:
        healthy, lines = verify(str(part))
        print("\n".join(lines), file=sys.stdout if healthy else sys.stderr)
        ok = ok and healthy
    return 0 if ok else 2


def cmd_repair(args: list[str]) -> int:
    from synth.dataset.repair import repair

    for part in _each_part(args, "repair") or []:
        print(repair(str(part)))
    return 0


def cmd_view(args: list[str]) -> int:
    if _help(args):
        print(help_text(ViewArgs, "synth view out=<dir> episode=<index>"))
        return 0
    from synth.view import view

    a = parse(ViewArgs, args, "view")
    if not a.out:
        raise ConfigError("give the dataset: synth view out=<dir> episode=<index>")
    print(view(a.out, a.episode, a.camera or None, a.path or None))
    return 0


# generate keys that do not change the scene or its plan: refused rather than silently ignored
_NOT_FOR_EXPORT = ("n", "workers", "shard", "batch", "overwrite", "codec", "progress", "cameras", "action")


def export_usd_help() -> str:
    footer = (
        "And the scene keys of `synth generate` (task, embodiment, randomizers, task.<key>=, randomizers.<n>.<key>=,\n"
        "seed, control_hz, resolution, held_out), composed the same way: the stage is that attempt's scene.\n"
        'Needs usd-core (pip install usd-core, or pip install -e ".[usd]").'
    )
    return help_text(ExportArgs, "synth export-usd [task=... seed=...] attempt=0 out=scene.usda", footer)


def cmd_export_usd(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(export_usd_help())
        return 0
    own_keys = [f.name for f in dataclasses.fields(ExportArgs)]
    own, rest = [], []
    for a in args:
        k = a.split("=", 1)[0].lstrip("+~")
        if k in own_keys and "=" in a:
            own.append(a)
        elif k in _NOT_FOR_EXPORT:
            raise ConfigError(f"{k}= does nothing for export-usd; keys: {', '.join(own_keys)} and the scene keys")
        else:
            rest.append(a)
    opts = parse(ExportArgs, own, "export-usd")
    out, backend = opts.out, opts.backend
    from synth.usd.export import export_attempt, require_pxr

    require_pxr()
    if backend == "isaac":
        from synth.usd.isaac import require_isaac

        require_isaac()
        if not opts.plan:
            raise ConfigError("backend=isaac replays the plan: drop plan=false")
    from synth.config import compose_config, settings

    s = settings(compose_config(rest))
    parent = Path(out).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write out={out} ({e.strerror}); choose a writable path") from None
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"cannot write out={out} (no write permission in {parent}); choose a writable path")
    summary = export_attempt(s, opts.attempt, out, opts.plan)
    print(f"{summary['stage']}: {s.task.name}, seed {s.seed}, attempt {opts.attempt}: {summary['instruction']!r}")
    if summary["plan"]:
        print(f"{summary['plan']}: planned joint targets; MuJoCo: {summary['mujoco']}")
    elif summary["mujoco"]:
        print(f"no plan: the attempt failed to plan ({summary['mujoco']})")
    if backend == "isaac":
        if not summary["plan"]:
            raise ConfigError(f"attempt {opts.attempt} has no plan to replay; try another attempt=")
        from synth.usd.isaac import replay

        print(json.dumps(replay(Path(summary["plan"]))))
    return 0


def check_gl_env() -> None:
    """`import mujoco` loads the library MUJOCO_GL names at once: a missing one is one line here, not a traceback."""
    import ctypes.util

    name = os.environ.get("MUJOCO_GL", "").strip().lower()
    lib, apt, other = {
        "osmesa": ("OSMesa", "libosmesa6", "egl"),
        "egl": ("EGL", "libegl1 libopengl0 libgl1-mesa-dri", "osmesa"),
    }.get(name, ("", "", ""))
    if lib and ctypes.util.find_library(lib) is None:
        raise ConfigError(
            f"MUJOCO_GL={name} but lib{lib} is not installed: apt-get install {apt}, or use MUJOCO_GL={other} "
            "(or unset MUJOCO_GL to let synth choose)"
        )


def cmd_help(args: list[str]) -> int:
    from synth.registry import RANDOMIZERS

    print(f"{USAGE}\ntasks:\n{listings.task_names()}\n\nembodiments:\n{listings.embodiments()}\n")
    print(wrap(f"randomizers: {', '.join(RANDOMIZERS.names())}"))
    return 0


COMMANDS = {
    "generate": cmd_generate,
    "train": cmd_train,
    "eval": cmd_eval,
    "merge": cmd_merge,
    "inspect": cmd_inspect,
    "view": cmd_view,
    "verify": cmd_verify,
    "repair": cmd_repair,
    "export-usd": cmd_export_usd,
    "tasks": lambda a: print(listings.tasks(_names(a))) or 0,
    "randomizers": lambda a: print(listings.randomizers(_names(a))) or 0,
    "embodiments": lambda a: print(listings.embodiments()) or 0,
    "axes": lambda a: print(listings.axes()) or 0,
}
HELP = {"help": cmd_help, "-h": cmd_help, "--help": cmd_help}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not argv or argv[0] in ("-h", "--help", "help"):
        argv = ["help"]
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS and cmd not in HELP:
        from synth.errors import closest

        print(f"error: unknown command '{cmd}'{closest(cmd, list(COMMANDS))}", file=sys.stderr)
        return 2
    try:
        check_flags(rest)
        check_gl_env()
        rc = {**COMMANDS, **HELP}[cmd](rest)
        sys.stdout.flush()  # here, so a closed pipe (`synth generate --help | head`) is caught below
        return rc
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly (before OSError, its base class)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.ENOSPC:
            print(
                f"error: disk full while writing {e.filename or ''}; free space and rerun the same command "
                "to resume (finished episodes are kept)",
                file=sys.stderr,
            )
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished episodes are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
