"""Command keys, declared once: a dataclass field made by `key(...)` carries its default, one-line help and check.

One typed `key=value` parser (`parse`) and one `--help` layout (`help_text`) serve every command; `synth generate`
composes with Hydra from the same declarations (synth/config.py).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from synth.errors import ConfigError


def key(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] = (),
    names: Sequence[str] = (),
    low: float | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field declaring one key: `default`, a one-line `help` (units, valid values), and its check:
    `choices` (the valid strings), `names` (named values a number key also takes, e.g. auto), `low` (least
    number allowed), or `check(value) -> value` raising ConfigError. List defaults are copied per instance."""
    meta = {"help": help, "choices": tuple(choices), "names": tuple(names), "low": low, "check": check}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    if dataclasses.is_dataclass(default) and not isinstance(default, type):  # a group of keys, e.g. physics.*
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default_of(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]


def keys(cls: type) -> dict[str, dataclasses.Field]:
    """The declared keys of a config class, in order."""
    return {f.name: f for f in dataclasses.fields(cls)}


def help_of(cls: type, name: str) -> str:
    """The help of key `name` of the dataclass `cls`: its field's, or where a subclass declares the field again with
    only a new default (a plugin's `settle: float = 0.4`), the help of the nearest base class's field."""
    for c in cls.__mro__:
        f = getattr(c, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("help"):
            return f.metadata["help"]
    return ""


def suggest(name: str, options: Sequence[str]) -> str:
    """'; did you mean 'x'?' for the closest option, or the options themselves."""
    import difflib

    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; keys: {', '.join(options)}"


def check_flags(args: Sequence[str]) -> None:
    """`--n=5` is refused with the spelling that works."""
    for a in args:
        if a.startswith("-") and a not in ("-h", "--help"):
            body = a.lstrip("-")
            fix = body if "=" in body else f"{body}=<value>"
            raise ConfigError(f"write {fix}, not {a}")


def _scalar(kind: Any, text: str) -> Any:
    """text -> a value of `kind` (bool, int, float or str); ValueError if it is not one."""
    if kind is bool:
        low = text.strip().lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise ValueError
    if kind is int:
        x = float(text)
        if x != int(x):
            raise ValueError
        return int(x)
    if kind is float:
        return float(text)
    return text


def _items(text: str) -> list[str]:
    """'[a, b]' or 'a' -> its items; '[]' -> none."""
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    return [s.strip().strip("'\"") for s in t.split(",") if s.strip()]


def _kinds(hint: Any) -> tuple[Any, bool]:
    """A field's type -> (the scalar kind, whether it is a tuple of them). `int | str` is an int key with names."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not str)
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return (hint if hint in (bool, int, float) else str), False


def _expected(kind: Any, f: dataclasses.Field) -> str:
    names = " or ".join(f.metadata.get("names", ()))
    what = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
    return f"{what}{' or ' + names if names else ''}"


def check_value(f: dataclasses.Field, value: Any, quote: bool = False) -> Any:
    """Apply a key's declared check (choices, low, check) to a typed value; returns the value (or the check's).
    Messages show the value as typed (`amp=fast`), or with quote, as Python writes it (`action='ee_vel'`)."""
    m = f.metadata
    for item in value if isinstance(value, (tuple, list)) else (value,):
        v = repr(item) if quote else item
        if item in m.get("names", ()):
            continue
        if m.get("choices") and item not in m["choices"]:
            ch = list(m["choices"])
            options = f"{ch[0]} or {ch[1]}" if len(ch) == 2 else "one of " + ", ".join(ch)
            near = suggest(str(item), ch)
            raise ConfigError(f"{f.name}={v}: choose {options}{near if 'did you' in near else ''}")
        if m.get("low") is not None and isinstance(item, (int, float)) and item < m["low"]:
            raise ConfigError(f"{f.name}={v}: give a value >= {m['low']:g}")
    return m["check"](value) if m.get("check") else value


def parse(cls: type, args: Sequence[str], command: str) -> Any:
    """key=value arguments -> an instance of the config dataclass `cls`, typed and checked by its declarations."""
    hints = typing.get_type_hints(cls)
    fields = keys(cls)
    check_flags(args)
    kw: dict[str, Any] = {}
    for a in args:
        if "=" not in a:
            raise ConfigError(f"'{a}' is not key=value; see `synth {command} --help`")
        k, v = a.split("=", 1)
        if k not in fields:
            raise ConfigError(f"unknown key '{k}'{suggest(k, list(fields))}")
        f = fields[k]
        kind, many = _kinds(hints[k])
        try:
            if many:
                val: Any = tuple(_scalar(kind, x) for x in _items(v))
            elif v in f.metadata.get("names", ()):
                val = v
            else:
                val = _scalar(kind, v)
        except ValueError:
            shape = f"a list like [a,b] of {_expected(kind, f)}" if many else _expected(kind, f)
            raise ConfigError(f"{k}={v}: expected {shape}") from None
        kw[k] = check_value(f, val)
    return cls(**kw)


def show(value: Any) -> str:
    """A default as it is typed on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) and abs(value) < 1e6 else str(value)


def width() -> int:
    """Columns of help text: the terminal's (COLUMNS when piped), 60 to 120, else 100."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def wrap(text: str, cols: int | None = None) -> str:
    """Each line of `text` wrapped at `cols`, continuation lines indented two more than their line."""
    cols = cols or width()
    out = []
    for line in text.splitlines():
        lead = " " * (len(line) - len(line.lstrip()))
        out += textwrap.wrap(line, cols, subsequent_indent=lead + "  ", break_on_hyphens=False) or [""]
    return "\n".join(out)


def fold(text: str, cols: int, indent: str) -> list[str]:
    """A line such as `colours=[light wood,dark wood,...]` broken after commas where it is wider than `cols`,
    continuation lines starting with `indent`."""
    lines, line = [], ""
    for part in re.split(r"(?<=,)", text):
        if line.strip() and len(line) + len(part) > cols:
            lines.append(line)
            line = indent
        line += part
    return [*lines, line]


def help_lines(cls: type, skip: Sequence[str] = (), cols: int | None = None) -> list[str]:
    """`  key=default  description` per declared key, wrapped at the terminal's width (never cut)."""
    cols = cols or width()
    rows = []
    for f in dataclasses.fields(cls):
        value = default_of(f) if f.name not in skip else None
        if f.name in skip:
            continue
        if dataclasses.is_dataclass(value):  # a group: one row per member key, e.g. physics.timestep=
            rows += [
                (f"{f.name}.{g.name}={show(default_of(g))}", help_of(type(value), g.name))
                for g in dataclasses.fields(value)
            ]
        else:
            rows.append((f"{f.name}={show(value)}", help_of(cls, f.name)))
    col = min(max((len(r[0]) for r in rows), default=0) + 4, 26)
    out = []
    for left, text in rows:
        head = f"  {left}".ljust(col)
        if len(head) > col:  # a long default: the description starts on its own line
            out += fold(head.rstrip(), cols, " " * 6)
            head = " " * col
        lines = textwrap.wrap(text, cols, initial_indent=head, subsequent_indent=" " * col, break_on_hyphens=False)
        out += lines or [head.rstrip()]
    return out


def help_text(cls: type, usage: str, footer: str = "", skip: Sequence[str] = ()) -> str:
    """A command's --help: usage, every key with its default and description, then `footer`."""
    body = "\n".join(help_lines(cls, skip))
    return (
        wrap(f"usage: {usage}")
        + f"\n\nkeys (key=value):\n{body}\n"
        + (f"\n{wrap(footer.rstrip())}\n" if footer else "")
    )
