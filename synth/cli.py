"""The `synth` command: generate, inspect, view, and listings of what is registered."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

from synth.errors import ConfigError

USAGE = """usage: synth <command> [key=value ...]

commands:
  generate     make a dataset: synth generate task=pick_place n=1e6 out=data/pick_place
  train        pretrain the bundled VLA: synth train data=<dir> out=runs/pp [steps= minutes= model=tiny|base]
  eval         closed-loop success per variation axis: synth eval policy=runs/pp episodes=50
  merge        join the parts of a part=i/K run: synth merge out=<dir> parts=[p0,p1,...] (or parts='runs/p*')
  inspect      counts, success rate, failure reasons, randomization coverage: synth inspect out=<dir>
  view         write an mp4 of one episode: synth view out=<dir> episode=3
  export-usd   one attempt's scene as a USD stage for Isaac Sim: synth export-usd task=pick_place seed=3 attempt=0
  tasks        list tasks
  randomizers  list randomizers and their ranges
  embodiments  list embodiments

`synth generate --help` lists every key. Overrides use Hydra's syntax (randomizers=[lighting,table],
randomizers.lighting.intensity=[0.2,0.9], +experiment=rendered).
"""


def _kv(args: list[str], allowed: dict[str, str]) -> dict[str, str]:
    out = {}
    for a in args:
        if "=" not in a:
            raise ConfigError(f"'{a}' is not key=value; keys: {', '.join(allowed)}")
        k, v = a.split("=", 1)
        if k not in allowed:
            from synth.errors import closest

            raise ConfigError(f"unknown key '{k}'{closest(k, list(allowed))}")
        out[k] = v
    return out


def _options(cls, args: list[str]):
    """key=value arguments -> an instance of the frozen dataclass `cls` (values typed by the defaults)."""
    import dataclasses

    import yaml

    from synth.errors import closest

    fields = {f.name: f for f in dataclasses.fields(cls)}
    kw = {}
    for a in args:
        if "=" not in a:
            raise ConfigError(f"'{a}' is not key=value; keys: {', '.join(fields)}")
        k, v = a.split("=", 1)
        if k not in fields:
            raise ConfigError(f"unknown key '{k}'{closest(k, list(fields))}")
        default = _default(fields[k])
        try:
            val = yaml.safe_load(v) if v else ""
            if isinstance(default, tuple):
                items = val if isinstance(val, list) else [val]
                kind = type(default[0]) if default else (float if k == "weights" else str)
                val = tuple(kind(x) for x in items)
            elif isinstance(default, bool):
                if not isinstance(val, bool):
                    raise ValueError
            elif isinstance(default, int):
                f = float(val)
                if f != int(f):
                    raise ValueError
                val = int(f)
            elif isinstance(default, float):
                val = float(val)
            else:
                val = v
        except (ValueError, TypeError):
            raise ConfigError(f"{k}={v}: expected {type(default).__name__} like {default!r}") from None
        kw[k] = val
    return cls(**kw)


def _keys_help(cls) -> str:
    import dataclasses

    return "keys (key=value):\n" + "\n".join(f"  {f.name}={_default(f)!r}" for f in dataclasses.fields(cls))


def cmd_train(args: list[str]) -> int:
    from synth.vla.train import TrainConfig, train

    if {"-h", "--help"} & set(args):
        print("synth train data=<dir> [data=[a,b] weights=[0.7,0.3]] out=runs/<name>\n" + _keys_help(TrainConfig))
        return 0
    train(_options(TrainConfig, args))
    return 0


def cmd_eval(args: list[str]) -> int:
    from synth.vla.evaluate import EvalConfig, evaluate

    if {"-h", "--help"} & set(args):
        print(
            "synth eval policy=runs/<name> [episodes=50 axes=[in_distribution,lighting]] | data=<dataset>\n"
            + _keys_help(EvalConfig)
        )
        return 0
    evaluate(_options(EvalConfig, args))
    return 0


def list_tasks() -> str:
    from synth.registry import TASKS

    w = max(map(len, TASKS.names()), default=0)
    return "\n".join(f"  {n:{w}s}  {getattr(TASKS.get(n), 'description', '')}" for n in TASKS.names())


def list_randomizers() -> str:
    import dataclasses

    from synth.registry import RANDOMIZERS

    lines = []
    for n in RANDOMIZERS.names():
        cls = RANDOMIZERS.get(n)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {n:15s} {doc}")
        for f in dataclasses.fields(cls):
            default = _default(f)
            lines.append(f"      {f.name} = {list(default) if isinstance(default, tuple) else default}")
    return "\n".join(lines)


def list_embodiments() -> str:
    from synth.embodiment import load, names

    return "\n".join(f"  {n:14s} {load(n).description}" for n in names())


def _default(f):
    import dataclasses

    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def generate_help() -> str:
    import dataclasses

    from synth.config import KEY_DOCS, GenerateConfig

    fields = [f for f in dataclasses.fields(GenerateConfig) if f.name in KEY_DOCS]
    keys = "\n".join(f"  {f.name:11s} {KEY_DOCS[f.name]} (default: {_default(f)!r})" for f in fields)
    return (
        "usage: synth generate [key=value ...]\n\n"
        f"keys:\n{keys}\n"
        "  task=<name>  embodiment=<name>  randomizers=[a,b,...]  task.<param>=  randomizers.<name>.<param>=\n"
        "  +experiment=rendered (two cameras at 128x128) | +experiment=smoke (8 episodes, one process)\n\n"
        f"tasks:\n{list_tasks()}\n\nembodiments:\n{list_embodiments()}\n\n"
        f"randomizers (default: all):\n{list_randomizers()}\n"
    )


def cmd_generate(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(generate_help())
        return 0
    from synth.collection import generate as generate_collection
    from synth.collection import split
    from synth.config import compose_config, settings

    part_list, rest = split(args)
    if part_list:  # several bodies or rates: one LeRobot part per combination (synth/collection.py)
        generate_collection(part_list, rest)
        return 0
    s = settings(compose_config(args))
    from synth.generate import check_out, generate

    check_out(s.out)
    generate(s)
    return 0


def cmd_merge(args: list[str]) -> int:
    keys = {
        "out": "the merged dataset's directory",
        "parts": "the parts' directories: [p0,p1,...] or a glob such as 'runs/p*'",
        "n": "episodes (default: the n the parts were run with)",
    }
    if any(a in ("-h", "--help", "help") for a in args):
        print(
            "usage: synth merge out=<dir> parts=[p0,p1,...] [n=]\n"
            + "\n".join(f"  {k:6s} {v}" for k, v in keys.items())
        )
        return 0
    kv = _kv(args, keys)
    if "out" not in kv or "parts" not in kv:
        raise ConfigError("give the merged dataset and the parts: synth merge out=<dir> parts=[p0,p1,...]")
    from synth.config import _count
    from synth.merge import merge

    merge(kv["out"], kv["parts"], _count(kv["n"]) if "n" in kv else None)
    return 0


def cmd_inspect(args: list[str]) -> int:
    from synth.inspect import inspect

    kv = _kv(args, {"out": "dataset directory"})
    if "out" not in kv:
        raise ConfigError("give the dataset: synth inspect out=<dir>")
    from synth.collection import parts

    for part in parts(kv["out"]) or [Path(kv["out"])]:
        print(inspect(str(part)))
    return 0


def cmd_view(args: list[str]) -> int:
    from synth.view import view

    kv = _kv(args, {"out": "dataset", "episode": "index", "camera": "name", "path": "output file"})
    if "out" not in kv:
        raise ConfigError("give the dataset: synth view out=<dir> episode=<index>")
    try:
        ep = int(kv.get("episode", "0"))
    except ValueError:
        raise ConfigError(f"episode={kv['episode']!r} is not an episode index") from None
    print(view(kv["out"], ep, kv.get("camera"), kv.get("path")))
    return 0


EXPORT_KEYS = {
    "attempt": "attempt index: the scene of attempt i of `synth generate` with the same keys (default 0)",
    "out": "the stage to write, .usda (text) or .usd/.usdc (binary) (default scene.usda)",
    "plan": "also write <out>.plan.json, the planned joint targets and MuJoCo's outcome (default true)",
    "backend": "none, or isaac: replay the plan in Isaac Sim after exporting (needs isaacsim)",
}
# generate keys that do not change the scene or its plan: refused rather than silently ignored
_NOT_FOR_EXPORT = ("n", "workers", "shard", "batch", "overwrite", "codec", "progress", "cameras", "action")


def export_usd_help() -> str:
    keys = "\n".join(f"  {k:8s} {v}" for k, v in EXPORT_KEYS.items())
    return (
        "usage: synth export-usd [task=... embodiment=... randomizers=[...] seed=... control_hz=...] "
        "attempt=0 out=scene.usda\n\n"
        f"keys:\n{keys}\n"
        "  and the scene keys of `synth generate` (task, embodiment, randomizers, task.<p>=, randomizers.<n>.<p>=,\n"
        "  seed, control_hz, resolution, held_out), composed the same way: the stage is that attempt's scene.\n"
        'Needs usd-core (pip install usd-core, or pip install -e ".[usd]").'
    )


def cmd_export_usd(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(export_usd_help())
        return 0
    own: dict[str, str] = {}
    rest = []
    for a in args:
        k = a.split("=", 1)[0].lstrip("+~")
        if k in EXPORT_KEYS and "=" in a:
            own[k] = a.split("=", 1)[1]
        elif k in _NOT_FOR_EXPORT:
            raise ConfigError(f"{k}= does nothing for export-usd; keys: {', '.join(EXPORT_KEYS)} and the scene keys")
        else:
            rest.append(a)
    try:
        attempt = int(own.get("attempt", "0"))
        if attempt < 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"attempt={own['attempt']!r}: give an attempt index >= 0, e.g. attempt=0") from None
    out = own.get("out", "scene.usda")
    if not out.endswith((".usda", ".usd", ".usdc")):
        raise ConfigError(f"out={out!r}: give a stage path ending in .usda, .usd or .usdc")
    plan = own.get("plan", "true").lower()
    if plan not in ("true", "false"):
        raise ConfigError(f"plan={own['plan']!r}: give plan=true or plan=false")
    backend = own.get("backend", "none")
    if backend not in ("none", "isaac"):
        raise ConfigError(f"backend={backend!r}: give backend=none (export only) or backend=isaac")
    from synth.usd import export_attempt, require_pxr

    require_pxr()
    if backend == "isaac":
        from synth.backends.isaac import require_isaac

        require_isaac()
        if plan != "true":
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
    summary = export_attempt(s, attempt, out, plan == "true")
    print(f"{summary['stage']}: {s.task.name}, seed {s.seed}, attempt {attempt}: {summary['instruction']!r}")
    if summary["plan"]:
        print(f"{summary['plan']}: planned joint targets; MuJoCo: {summary['mujoco']}")
    elif summary["mujoco"]:
        print(f"no plan: the attempt failed to plan ({summary['mujoco']})")
    if backend == "isaac":
        if not summary["plan"]:
            raise ConfigError(f"attempt {attempt} has no plan to replay; try another attempt=")
        from synth.backends.isaac import replay

        print(json.dumps(replay(Path(summary["plan"]))))
    return 0


COMMANDS = {
    "generate": cmd_generate,
    "train": cmd_train,
    "eval": cmd_eval,
    "merge": cmd_merge,
    "inspect": cmd_inspect,
    "view": cmd_view,
    "export-usd": cmd_export_usd,
    "tasks": lambda a: print(list_tasks()) or 0,
    "randomizers": lambda a: print(list_randomizers()) or 0,
    "embodiments": lambda a: print(list_embodiments()) or 0,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(
            USAGE
            + "\ntasks:\n"
            + list_tasks()
            + "\n\nembodiments:\n"
            + list_embodiments()
            + "\n\nrandomizers: "
            + ", ".join(__import__("synth.registry").registry.RANDOMIZERS.names())
        )
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        from synth.errors import closest

        print(f"error: unknown command '{cmd}'{closest(cmd, list(COMMANDS))}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[cmd](rest)
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
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished episodes are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
