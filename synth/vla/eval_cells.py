"""An evaluation's finished cells on disk: an interrupted `synth eval` (a killed process, a lost machine) resumes
at the first unfinished cell, and a second eval under the same name with other settings is refused rather than
mixed with, or written over, the first.

Each cell is <run>/eval/<name>/cells/<cell>.json: {"settings": ..., "cell": ...}, written atomically once the
cell is done. The settings are the eval's keys that decide a cell's episodes (all but name=, axes= and device=)
and the checkpoint evaluated."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from synth.dataset.durable import write_json
from synth.errors import ConfigError

FREE = ("name", "axes", "device")  # keys that change which cells run or where, not what a cell's episodes are


def settings(cfg: Any, checkpoint: Path) -> dict:
    """What a cell's result follows from: the eval config (an EvalConfig) but FREE, and the checkpoint."""
    s = {k: v for k, v in asdict(cfg).items() if k not in FREE}
    return json.loads(json.dumps({**s, "checkpoint": str(checkpoint)}))  # tuples as lists, as read back


def _file(folder: Path, name: str) -> Path:
    return folder / f"{re.sub(r'[^A-Za-z0-9_]+', '_', name)}.json"


class Cells:
    """The finished cells of the evaluation at `out` (<run>/eval/<name>) made with `settings`."""

    def __init__(self, out: Path, settings: dict):
        self.dir, self.settings = out / "cells", settings
        self.done: dict[str, dict] = {}
        for f in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            rec = json.loads(f.read_text())
            if rec["settings"] != settings:
                raise ConfigError(self._refusal(out, rec["settings"]))
            self.done[rec["name"]] = rec["cell"]

    def _refusal(self, out: Path, old: dict) -> str:
        diff = [k for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)]
        was = ", ".join(f"{k}={old.get(k)} (now {self.settings.get(k)})" for k in diff[:3])
        return f"{out} holds cells evaluated with other settings: {was}; give another name= or remove {self.dir}"

    def save(self, name: str, cell: dict) -> None:
        write_json(_file(self.dir, name), {"name": name, "settings": self.settings, "cell": cell})
