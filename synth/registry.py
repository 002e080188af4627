"""One decorator registers a plugin for Python and for Hydra's ConfigStore."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from synth.errors import ConfigError, closest

if TYPE_CHECKING:
    from synth.randomize import Randomizer


class Registry:
    """Named plugin classes (frozen dataclasses). `multi` groups select several at once, one node each."""

    def __init__(self, group: str, kind: str, multi: bool = False):
        self.group, self.kind, self.multi = group, kind, multi
        self.items: dict[str, type] = {}

    def register(self, name: str):
        def deco(cls):
            if name in self.items and self.items[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            cls.name = name
            self.items[name] = cls
            node = OmegaConf.structured(cls)
            OmegaConf.set_readonly(node, False)
            package = f"{self.group}.{name}" if self.multi else None
            ConfigStore.instance().store(group=self.group, name=name, node=node, package=package)
            return cls

        return deco

    def get(self, name: str) -> type:
        load_plugins()
        if name not in self.items:
            raise ConfigError(f"unknown {self.kind} '{name}'{closest(name, list(self.items))}")
        return self.items[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self.items)

    def where(self, **declared) -> list[str]:
        """The names whose classes declare every given value: RANDOMIZERS.where(acts_on="expert")."""
        return [n for n in self.names() if all(getattr(self.items[n], k) == v for k, v in declared.items())]

    def build(self, name: str, node: DictConfig | dict | None = None):
        """An instance from a config node; lists become tuples; unknown keys are refused."""
        cls = self.get(name)
        raw = dict(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node or {})  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in fields:
                raise ConfigError(f"{self.group}.{name} has no key '{key}'{closest(key, sorted(fields))}")
        kw = {k: tuple(v) if isinstance(v, list) and "tuple" in str(hints[k]) else v for k, v in raw.items()}
        return cls(**kw)


TASKS = Registry("task", "task")
RANDOMIZERS = Registry("randomizers", "randomizer", multi=True)
task = TASKS.register
# what a randomizer changes: the scene that is built, the joint targets the physics executes, how the expert
# demonstrates, what is written as observed, the instruction
ACTS_ON = ("scene", "execution", "expert", "observation", "language")


def randomizer(name: str, *, acts_on: str | None = None, kinematic: bool | None = None, evaluation: bool | None = None):
    """Registers a randomizer that declares on its class what it acts on (one of ACTS_ON) and where it is allowed:
    `kinematic` (mode=kinematic applies it; False: refused there) and `evaluation` (synth eval keeps it in the
    dataset's randomizers; False: left out). All three must be given."""
    if acts_on not in ACTS_ON or not isinstance(kinematic, bool) or not isinstance(evaluation, bool):
        raise ConfigError(
            f"randomizer '{name}' declares acts_on={acts_on!r}, kinematic={kinematic!r}, evaluation={evaluation!r}; "
            f"give @randomizer('{name}', acts_on=<one of {list(ACTS_ON)}>, kinematic=True|False, "
            "evaluation=True|False)"
        )
    register = RANDOMIZERS.register(name)

    def deco(cls):
        clash = [f.name for f in dataclasses.fields(cls) if f.name in ("acts_on", "kinematic", "evaluation")]
        if clash:
            raise ConfigError(f"randomizer '{name}' has parameters {clash}: the names of its declaration; rename them")
        cls.acts_on, cls.kinematic, cls.evaluation = acts_on, kinematic, evaluation
        return register(cls)

    return deco


def declared(cls: type[Randomizer]) -> str:
    """A randomizer's declaration in words: what it acts on and where it is allowed."""
    yes = {True: "yes", False: "no"}
    return f"acts on: {cls.acts_on}; mode=kinematic: {yes[cls.kinematic]}; synth eval: {yes[cls.evaluation]}"


_loaded = False


def load_plugins() -> None:
    """Import every module of synth.scenes and synth.randomizers, then `synth.plugins` entry points, then every
    `*.py` file in the directories of `$SYNTH_PLUGINS` (os.pathsep-separated; each imported by its file name)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for pkg in ("synth.scenes", "synth.randomizers"):
        mod = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(mod.__path__):
            importlib.import_module(f"{pkg}.{info.name}")
    for ep in entry_points(group="synth.plugins"):
        ep.load()
    for folder in filter(None, os.environ.get("SYNTH_PLUGINS", "").split(os.pathsep)):
        if not Path(folder).is_dir():
            _loaded = False
            raise ConfigError(f"SYNTH_PLUGINS: {folder} is not a directory; give folders of plugin .py files")
        if folder not in sys.path:  # appended: a plugin never shadows an installed module; spawned workers inherit it
            sys.path.append(folder)
        for file in sorted(Path(folder).glob("*.py")):
            mod = importlib.import_module(file.stem)
            if Path(mod.__file__ or "").resolve() != file.resolve():
                _loaded = False
                raise ConfigError(f"SYNTH_PLUGINS: {file} has the name of the module {mod.__name__}; rename the file")
