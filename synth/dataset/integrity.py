"""What each commit wrote, and whether it is still there: the manifest, the checksums, the damage checks.

`.synth/manifest.jsonl` gets one line per commit, appended (and fsynced) after the commit's files are in
place and before `.synth/progress.json`, the commit point, names them: the commit's number, the progress
before and after it, and the size and BLAKE2b digest of every file it added (data, meta/episodes, videos,
attempts). `.synth/meta.sums.json` holds the same for the files every commit rewrites (meta/info.json,
meta/tasks.parquet, meta/stats.json). `progress["commits"]` counts the manifest lines that are committed;
lines beyond it belong to a commit a kill interrupted and are dropped on resume.

`damage(root, full)` lists damaged files: missing, resized, or (full) another digest than recorded, plus
the metadata invariants a reader relies on. `synth verify` runs the full check; `synth generate` and
`synth inspect` run the cheap one (sizes and metadata) and stop on damage with one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from synth.errors import ConfigError

MANIFEST = ".synth/manifest.jsonl"
META_SUMS = ".synth/meta.sums.json"
META_FILES = ("meta/info.json", "meta/tasks.parquet", "meta/stats.json")
COMMITTED = (  # (glob, progress key counting its files)
    ("data/chunk-*/file-*.parquet", "files"),
    ("meta/episodes/chunk-*/file-*.parquet", "files"),
    ("videos/*/chunk-*/file-*.mp4", "files"),
    ("meta/synth/attempts/chunk-*/file-*.parquet", "attempt_files"),
)


def digest(path: Path) -> list:
    """[size in bytes, BLAKE2b hex digest] of a file, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return [path.stat().st_size, h.hexdigest()]


def append(root: Path, entry: dict) -> None:
    """Append one commit's line to the manifest and flush it to the disk."""
    with open(root / MANIFEST, "a") as f:
        f.write(json.dumps(entry, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())


def entries(root: Path, commits: int | None = None) -> list[dict]:
    """The manifest's lines (the first `commits` of them); a line torn by a kill ends the list."""
    path = root / MANIFEST
    out: list[dict] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out if commits is None else out[:commits]


def recorded(root: Path, progress: dict) -> dict[str, list]:
    """{relative path: [size, digest]} of every committed file the manifest knows, as of `progress`."""
    files: dict[str, list] = {}
    for e in entries(root, int(progress.get("commits", 0))):
        files.update(e["files"])
    return files


def write_meta_sums(root: Path) -> None:
    from synth.dataset.durable import write_json

    write_json(root / META_SUMS, {rel: digest(root / rel) for rel in META_FILES if (root / rel).exists()})


def file_number(path: Path) -> int:
    """The index of a committed file from its path: chunk-CCC/file-FFF -> CCC * CHUNKS_SIZE + FFF."""
    from synth.dataset.format import CHUNKS_SIZE

    return int(path.parent.name.split("-")[1]) * CHUNKS_SIZE + int(path.stem.split("-")[1])


def damage(root: Path, full: bool = True, uncommitted: bool = True) -> list[tuple[str, str]]:
    """[(file relative to root, what is wrong)] of a dataset; [] when healthy. `full`: compare digests and run
    LeRobot's invariants on every file; else sizes and metadata only. `uncommitted`: also name the files an
    interrupted commit left beyond `.synth/progress.json` (a rerun or `synth repair` removes them)."""
    prog_path = root / ".synth" / "progress.json"
    try:
        progress = json.loads(prog_path.read_text())
        progress["episodes"]
    except FileNotFoundError:
        return []  # not written by synth's store (or never committed): nothing recorded to check against
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [(".synth/progress.json", f"unreadable ({type(e).__name__})")]
    out: list[tuple[str, str]] = []
    try:
        json.loads((root / ".synth" / "config.json").read_text())
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        out.append((".synth/config.json", "unreadable (the dataset's config; restore it or regenerate)"))
    files = recorded(root, progress)
    for rel, (size, digest_) in files.items():
        out += file_damage(root, rel, size, digest_ if full else None)
    if not files:  # a dataset from before the manifest: every committed file must exist and parse
        for pattern, key in COMMITTED[:2]:
            for i in range(int(progress.get(key, 0))):
                rel = pattern.split("/chunk")[0] + f"/chunk-{i // 1000:03d}/file-{i % 1000:03d}.parquet"
                out += _parquet_damage(root, rel)
    if uncommitted:
        for pattern, key in COMMITTED:
            for f in root.glob(pattern):
                if file_number(f) >= int(progress.get(key, 0)):
                    out.append((str(f.relative_to(root)), "written by an interrupted commit, not committed"))
    out += _meta_damage(root, progress, full, exact=uncommitted)
    if full and not out and progress["episodes"]:
        out += _invariants(root)
    return out


def file_damage(root: Path, rel: str, size: int, digest_: str | None) -> list[tuple[str, str]]:
    path = root / rel
    if not path.exists():
        return [(rel, "missing")]
    got = path.stat().st_size
    if got != size:
        return [(rel, f"{got} bytes, {size} recorded at its commit ({'truncated' if got < size else 'grown'})")]
    if digest_ is not None and digest(path)[1] != digest_:
        return [(rel, "contents changed since its commit (checksum differs)")]
    return []


def _parquet_damage(root: Path, rel: str) -> list[tuple[str, str]]:
    if not (root / rel).exists():
        return [(rel, "missing")]
    try:
        pq.read_metadata(root / rel)
    except Exception as e:  # noqa: BLE001 - any unreadable footer is damage to report
        return [(rel, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80]})")]
    return []


def _meta_damage(root: Path, progress: dict, full: bool, exact: bool) -> list[tuple[str, str]]:
    """info.json and tasks.parquet must be readable and hold at least what progress.json counts (exactly, when
    `exact`: no interrupted commit to roll back); full: the digests of meta.sums.json."""
    if not progress["episodes"]:
        return []
    out = _parquet_damage(root, "meta/tasks.parquet")
    if not out:
        rows = pq.read_metadata(root / "meta/tasks.parquet").num_rows
        want = int(progress.get("tasks", rows))
        if rows < want or (exact and rows != want):
            out.append(("meta/tasks.parquet", f"{rows} tasks, {want} committed"))
    try:
        info = json.loads((root / "meta/info.json").read_text())
        totals = (info["total_episodes"], info["total_frames"])
        if exact and totals != (progress["episodes"], progress["frames"]):
            out.append(("meta/info.json", f"totals {totals} != {progress['episodes'], progress['frames']} committed"))
    except FileNotFoundError:
        out.append(("meta/info.json", "missing"))
    except (ValueError, KeyError, TypeError) as e:
        out.append(("meta/info.json", f"unreadable ({type(e).__name__})"))
    if full and not out and exact and (root / META_SUMS).exists():
        for rel, (size, digest_) in json.loads((root / META_SUMS).read_text()).items():
            out += file_damage(root, rel, size, digest_)
    return out


def _invariants(root: Path) -> list[tuple[str, str]]:
    """LeRobot's invariants (contiguous episode_index and index, totals equal the rows, every episode's frames
    and task inside the data), each problem under the file it names."""
    from synth.dataset.reader import LeRobotDir

    out = []
    for problem in LeRobotDir(root).validate():
        head = problem.split(":", 1)[0]
        rel = head if "/" in head and (root / head).exists() else _file_of(head)
        out.append((rel, problem))
    return out


def _file_of(head: str) -> str:
    return {"info.json": "meta/info.json", "stats.json": "meta/stats.json", "tasks": "meta/tasks.parquet"}.get(
        head, "meta/episodes" if head.startswith(("episode", "meta/episodes")) else head
    )


def check(root: Path, what: str) -> None:
    """The cheap check `synth generate` and `synth inspect` run first: ConfigError naming the first damaged
    file and `synth verify`. `what`: the command, for the message."""
    from synth.dataset.lock import busy

    found = damage(root, full=False, uncommitted=what != "generate" and busy(root) is None)
    if found:
        rel, why = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(
            f"out={root} is damaged: {rel}: {why}{more}; {what} stopped. Run `synth verify out={root}` to list "
            f"the damage and `synth repair out={root}` to cut the dataset back to its last intact commit"
        )


def keep(root: Path, commits: int) -> None:
    """Drop the manifest's lines beyond the first `commits` (an interrupted commit's, or a cut-back's)."""
    path = root / MANIFEST
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) > commits or (lines and not lines[-1].endswith("\n")):
        from synth.dataset.durable import write_atomic

        kept = "".join(line for line in lines[:commits] if line.endswith("\n"))
        write_atomic(path, lambda p: p.write_text(kept))
