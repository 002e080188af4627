"""User-facing errors: one line, naming the fix; the CLI turns them into exit code 2."""

from __future__ import annotations

import difflib


class ConfigError(ValueError):
    """Bad user input (unknown name, bad range, bad path). The message is shown as is."""


class Stopped(ConfigError):
    """A run that cannot go on (a shard that kills its worker every time, a Ray cluster lost): one line naming
    the fix; what was committed stays, and rerunning the same command resumes."""


def closest(name: str, options: list[str]) -> str:
    """A suffix for error messages: the options, and the closest match if there is one."""
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f"; did you mean '{match[0]}'?" if match else ""
    return f" (options: {', '.join(sorted(options))}){hint}"
