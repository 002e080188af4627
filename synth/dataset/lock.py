"""One writer per dataset: an exclusive `fcntl.flock` on `<out>/.synth/lock` for the length of a run.

The kernel drops the lock when the holding process dies (killed, out of memory, power cut), so no stale
lock survives a crash. Forked children (the worker processes) close their copy of the descriptor at
once, so the lock belongs to the main process alone. The file holds the holder's PID and host, for the
one-line error a second run on the same `out` gets.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
from pathlib import Path

from synth.errors import ConfigError

STATE = ".synth"  # the dataset's own state: config, progress, lock
LOCK = ".synth/lock"
_held: dict[Path, int] = {}  # resolved out -> descriptor of the lock this process holds


def _close_in_child() -> None:
    for fd in _held.values():
        try:
            os.close(fd)  # the parent's descriptor keeps the lock; the child's copy must not outlive it
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


def holder(root: Path) -> str:
    """'PID 123 on host h (synth generate)' from the lock file, as its holder wrote it ('another process' if
    unreadable)."""
    for _ in range(50):  # the holder writes its name just after taking the lock: wait up to ~0.5 s for it
        try:
            pid, host, *command = (root / LOCK).read_text().split()
            return f"PID {pid} on host {host}" + (f" ({' '.join(command)})" if command else "")
        except (OSError, ValueError):
            time.sleep(0.01)
    return "another process"


def acquire(root: str | Path, what: str = "synth generate") -> int:
    """Take the exclusive lock on dataset directory `root` (created if needed) for the command `what`;
    ConfigError naming the holder and its command when another process has it. Returns the descriptor; the
    lock lasts until `release` or the process ends."""
    root = Path(root)
    key = root.resolve()
    if key in _held:
        return _held[key]
    (root / ".synth").mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"out={root} is being written by {holder(root)}; wait for it to finish, or choose another out="
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {what}\n".encode(), 0)
    _held[key] = fd
    return fd


def release(root: str | Path) -> None:
    fd = _held.pop(Path(root).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor drops the lock


def busy(root: str | Path) -> str | None:
    """'PID .. on host ..' if another process holds the lock on `root` now, else None (nothing is written)."""
    path = Path(root) / LOCK
    if Path(root).resolve() in _held or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return holder(Path(root))
    finally:
        os.close(fd)


def foreign(root: Path) -> bool:
    """`root` holds something other than a synth dataset's lock (and the write probe)."""
    if not root.exists():
        return False
    for p in root.iterdir():
        if p.name == ".synth" and p.is_dir() and all(f.name == "lock" for f in p.iterdir()):
            continue
        if not p.name.startswith(".synth-write-test"):
            return True
    return False


def wipe(root: Path) -> None:
    """Empty `root`, keeping the lock this process holds on it."""
    for child in root.iterdir():
        if child.name == STATE:
            for f in child.iterdir():
                if f.is_dir():
                    shutil.rmtree(f)
                elif root / LOCK != f:
                    f.unlink()
        elif child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
