"""What is registered, as `synth tasks`, `synth randomizers`, `synth embodiments` and `synth axes` print it.

`synth tasks` and `synth randomizers` list every plugin with its keys and their defaults; given names
(`synth randomizers lighting`), each key's description from its declaration (synth.keys.key) as well.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence

from synth.keys import default_of, fold, help_lines, show, width, wrap


def axes() -> str:
    from synth.vla.axes import AXES

    w = max(map(len, AXES))
    return "\n".join(f"  {n:{w}s}  {a.description}" for n, a in AXES.items())


def embodiments() -> str:
    from synth.embodiment import load, names

    return "\n".join(f"  {n:14s} {load(n).description}" for n in names())


def task_names() -> str:
    """One line per task: its name and what it demonstrates."""
    from synth.registry import TASKS

    w = max(map(len, TASKS.names()), default=0)
    return "\n".join(line for n in TASKS.names() for line in _row(n, w, TASKS.get(n)))


def _row(name: str, w: int, cls: type) -> list[str]:
    """`  name  description`, the name in a column `w` wide, the description wrapped beside it."""
    text = f"  {name:{w}s}  {getattr(cls, 'description', '')}"
    return textwrap.wrap(text, width(), subsequent_indent=" " * (w + 4), break_on_hyphens=False)


def _defaults(cls: type, prefix: str) -> list[str]:
    """`prefix<key>=default` of every key of a plugin, two spaces apart, wrapped under its name (a long list
    after its commas)."""
    cols, pad = width(), " " * 6
    lines = [pad]
    for f in dataclasses.fields(cls):
        item = f"{prefix}{f.name}={show(default_of(f))}"
        if lines[-1].strip() and len(lines[-1]) + 2 + len(item) > cols:
            lines.append(pad)
        lines[-1] += ("  " if lines[-1].strip() else "") + item
    return [part for line in lines if line.strip() for part in fold(line, cols, pad + "  ")]


def _ranges(cls: type) -> bool:
    """Whether a randomizer has a (low, high) range among its keys."""
    pairs = [default_of(f) for f in dataclasses.fields(cls)]
    return any(isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v) for v in pairs)


def _detail(cls: type, title: str, typed: str, note: str = "") -> str:
    """One plugin: its name and description, then each key with its default and description."""
    head = wrap(f"{title}: {getattr(cls, 'description', '')}")
    if not dataclasses.fields(cls):
        return f"{head}\n  (no keys)"
    keys = "\n".join(help_lines(cls))
    tail = f"\n\n{wrap(note)}" if note else ""
    return f"{head}\n\n{wrap(f'keys ({typed}):')}\n{keys}{tail}"


def tasks(names: Sequence[str] = ()) -> str:
    """Every task with its task.<key>=default settings; with `names`, those tasks' keys described."""
    from synth.registry import TASKS

    if names:
        return "\n\n".join(_detail(TASKS.get(n), f"task={n}", "task.<key>=value") for n in names)
    lines = []
    for n in TASKS.names():
        cls = TASKS.get(n)
        kin = " [mode=kinematic too]" if getattr(cls, "kinematic", False) else ""
        lines += [wrap(f"  {n}: {getattr(cls, 'description', '')}{kin}"), *_defaults(cls, "task.")]
    more = (
        "`synth tasks <name> ...`: what each key means, in which units, and the values it takes. Every task runs in "
        "mode=physics; those marked also in mode=kinematic."
    )
    return "\n".join(lines) + "\n\n" + wrap(more)


def randomizers(names: Sequence[str] = ()) -> str:
    """Every randomizer with its keys and default ranges; with `names`, those randomizers' keys described."""
    from synth.registry import RANDOMIZERS, declared

    if names:
        parts = []
        for n in names:
            cls = RANDOMIZERS.get(n)
            note = f"{declared(cls).capitalize()}."
            note += " A pair [low,high] is a range: each draw is uniform in it." if _ranges(cls) else ""
            parts.append(_detail(cls, f"randomizers.{n}", f"randomizers.{n}.<key>=value", note))
        return "\n\n".join(parts)
    w = max(map(len, RANDOMIZERS.names()), default=0)
    lines = []
    for n in RANDOMIZERS.names():
        cls = RANDOMIZERS.get(n)
        lines += [*_row(n, w, cls), f"      ({declared(cls)})", *_defaults(cls, "")]
    more = (
        "Set one with randomizers.<name>.<key>=value (a pair [low,high] is a range); `synth randomizers <name> ...`: "
        "what each key means, in which units, and the values it takes."
    )
    return "\n".join(lines) + "\n\n" + wrap(more)
