"""Durable file writes: every file and directory flushed to the disk before anything that names it is written.

A write goes to a temporary name, is fsynced, renamed onto its path, and the directory fsynced; a power loss
or a kill at any point leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to the disk, so a power loss cannot undo a rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def naming(path: Path):
    """An OSError raised while writing `path` names it (pyarrow's "No space left on device" names no file)."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def makedirs(d: Path) -> None:
    """mkdir -p, fsyncing the parent of every directory created, so a power loss cannot drop it."""
    if d.exists():
        return
    makedirs(d.parent)
    d.mkdir(exist_ok=True)
    fsync(d.parent)


TEMPORARY = ".*.tmp-*"  # the names write_atomic writes under: what a process killed mid-write leaves behind


def write_atomic(path: Path, write) -> None:
    """Call write(tmp_path), flush it, rename it onto `path`, flush the directory."""
    makedirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # matches TEMPORARY
    with naming(path):
        write(tmp)
        fsync(tmp)
    os.replace(tmp, path)
    fsync(path.parent)


def write_json(path: Path, obj) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2)))
