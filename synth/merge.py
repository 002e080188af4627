"""`synth merge out=ALL parts=[p0,p1,...]`: the K parts of a part=i/K run joined into the one dataset a single
run with the same seed and n writes, episode for episode and in its order.

The whole run's shard g is shard g // K of part g % K (synth/parts.py). The merge rebuilds each shard g, in
order, as the staged shard a worker would have written (the same frames, attempt records, instructions,
draws, per-episode stats and videos) and commits it with the same `Store.commit` a run uses, so data files,
episode rows, tasks and stats come out as the run's. It stops at n episodes. Everything is checked before
anything is written: where a part stopped short of a shard the merge needs, it says which part to rerun
with which n. A merge interrupted is resumed by running it again.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth import parts as P
from synth import provenance
from synth.config import Settings
from synth.dataset import format as fmt
from synth.dataset import lock
from synth.dataset.durable import write_json
from synth.dataset.lock import STATE, foreign
from synth.dataset.staging import _read, _write, clean_partial, write_shard
from synth.dataset.writer import Store, chunked
from synth.errors import ConfigError
from synth.types import EpisodeBatch, Json

BASE = {"observation.state", "action", "timestamp", "frame_index", "index", "episode_index", "task_index"}


@dataclass
class Part:
    """One part dataset: where it is, which part it is, what it has committed."""

    root: Path
    i: int
    k: int
    fp: dict  # its fingerprint (.synth/config.json)
    raw: dict  # its composed config
    progress: dict
    attempt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (A,) attempts committed, sorted
    episode: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (A,) their episode index or -1
    _cache: dict = field(default_factory=dict)  # path -> table (the last few files read)
    _files: dict = field(default_factory=dict)  # folder -> [(first, last, path)] of its parquet files

    def files(self, folder: str, column: str, lo: int, hi: int) -> list[Path]:
        """The parquet files under `folder` whose `column` has values in [lo, hi) (from their footers)."""
        if folder not in self._files:
            found = []
            for f in sorted((self.root / folder).glob("chunk-*/file-*.parquet")):
                md = pq.ParquetFile(f).metadata
                col = md.schema.names.index(column)
                st = [md.row_group(r).column(col).statistics for r in range(md.num_row_groups)]
                found.append((min(int(x.min) for x in st), max(int(x.max) for x in st), f))
            self._files[folder] = found
        return [f for first, last, f in self._files[folder] if first < hi and last >= lo]

    @property
    def name(self) -> str:
        return f"part {self.i}/{self.k} (out={self.root})"

    def complete(self, j: int) -> bool:
        """Whether its shard j is committed whole."""
        return j < self.progress["next_shard"]

    def count(self, lo: int, hi: int) -> int:
        """Episodes among its committed attempts [lo, hi)."""
        a, b = np.searchsorted(self.attempt, [lo, hi])
        return int((self.episode[a:b] >= 0).sum())

    def read(self, path: Path) -> pa.Table:
        """A parquet file of the part (the last few read are kept: consecutive shards share files)."""
        if path not in self._cache:
            if len(self._cache) >= 6:
                self._cache.pop(next(iter(self._cache)))
            self._cache[path] = pq.read_table(path)
        return self._cache[path]

    def between(self, folder: str, column: str, lo: int, hi: int) -> pa.Table | None:
        """Rows of the parquet files under `folder` with lo <= column < hi, in file order; None without any."""
        tables = []
        for f in self.files(folder, column, lo, hi):
            t = self.read(f)
            tables.append(t.filter(pc.and_(pc.greater_equal(t[column], lo), pc.less(t[column], hi))))
        return pa.concat_tables(tables) if tables else None


def find(spec: str) -> list[Path]:
    """`[a,b,...]` or a glob (or a list of globs) -> part directories, in the order given (globs sorted)."""
    items = [x.strip().strip("'\"") for x in spec.strip().strip("[]").split(",") if x.strip()]
    found: list[Path] = []
    for item in items:
        hits = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not hits:
            raise ConfigError(f"parts: nothing matches {item!r}; give the part directories, e.g. parts=[p0,p1]")
        found += [Path(h) for h in hits]
    if not found:
        raise ConfigError("give the parts: synth merge out=<dir> parts=[p0,p1,...] (or parts='runs/p*')")
    return found


def open_part(root: Path) -> Part:
    cfg, prog = root / STATE / "config.json", root / STATE / "progress.json"
    if not cfg.is_file() or not prog.is_file():
        raise ConfigError(f"{root} is not a synth dataset; give the out= of each `synth generate ... part=i/K`")
    fp = json.loads(cfg.read_text())
    if "part" not in fp:
        raise ConfigError(f"{root} was not made with part=i/K; merge joins the parts of one part=i/K run")
    i, k = (int(x) for x in fp["part"].split("/"))
    raw = json.loads((root / "meta" / "synth.json").read_text())["config"]
    part = Part(root, i, k, fp, raw, json.loads(prog.read_text()))
    files = sorted((root / "meta" / "synth" / "attempts").glob("chunk-*/file-*.parquet"))
    if files:
        t = pa.concat_tables([pq.read_table(f, columns=["attempt", "episode_index"]) for f in files])
        part.attempt, part.episode = t["attempt"].to_numpy(), t["episode_index"].to_numpy()
    return part


def check(parts: list[Part], out: Path) -> None:
    """One run's K parts, each once, made with the same keys; `out` none of them."""
    k = parts[0].k
    if any(p.k != k for p in parts):
        raise ConfigError(f"the parts come from different splits ({sorted({p.k for p in parts})} parts)")
    have = sorted(p.i for p in parts)
    if have != list(range(k)):
        dup = sorted({i for i in have if have.count(i) > 1})
        missing = sorted(set(range(k)) - set(have))
        what = f"part {dup[0]}/{k} is given twice" if dup else f"part {', '.join(f'{i}/{k}' for i in missing)} missing"
        raise ConfigError(f"{what}: give each of the {k} parts once")
    base = {key: v for key, v in parts[0].fp.items() if key != "part"}
    for p in parts[1:]:
        other = {key: v for key, v in p.fp.items() if key != "part"}
        if other != base:
            diff = sorted(key for key in set(base) | set(other) if base.get(key) != other.get(key))
            raise ConfigError(f"{p.name} was made with other keys than {parts[0].name} ({', '.join(diff)})")
    if any(out.resolve() == p.root.resolve() for p in parts):
        raise ConfigError(f"out={out} is one of the parts; merge into a new directory")


def plan(parts: list[Part], n: int, shard: int) -> list[int]:
    """The whole run's shards g = 0, 1, ... the merge takes to reach n episodes; ConfigError naming the parts
    to rerun (and with which n) where a part has not committed a shard it needs."""
    k = len(parts)
    by = sorted(parts, key=lambda p: p.i)
    acc, g, out = 0, 0, []
    while acc < n:
        p, j = by[g % k], g // k
        have = p.count(g * shard, (g + 1) * shard)
        if not p.complete(j) and not (j == p.progress["next_shard"] and have >= n - acc):
            raise ConfigError(_short(by, g, n - acc, shard))
        out.append(g)
        acc += have
        g += 1
    return out


def _short(parts: list[Part], g0: int, missing: int, shard: int) -> str:
    """The one line naming every part short of the shards [g0, end) expected to hold the `missing` episodes,
    each with an n that covers its shards there with a tenth and a shard to spare."""
    k = len(parts)
    rate = sum(p.progress["successes"] for p in parts) / max(sum(p.progress["attempts"] for p in parts), 1)
    per_shard = max(shard * rate, 0.01 * shard)
    end = g0 + math.ceil(missing / per_shard)  # the whole run's shards [0, end) are expected to hold n episodes
    fixes = []
    for p in parts:
        shards, done = math.ceil(max(end - p.i, 0) / k), p.progress["next_shard"]  # it needs its shards j < shards
        if shards <= done:
            continue
        known = p.count(0, (done * k + p.i) * shard)  # the episodes of its complete shards
        need = known + math.ceil(1.1 * (shards - done + 1) * per_shard)
        fixes.append(f"part {p.i}/{k} (out={p.root}) with n={max(P.n_for(need, k, shard), fmt_n(p.raw['n']))}")
    return (
        f"a part stops short of shard {g0} of the whole run ({missing} more episodes needed): rerun "
        + ", ".join(fixes)
        + " (its other keys unchanged), then this merge"
    )


def fmt_n(n) -> int:
    return int(float(n))


def settings_of(part: Part, out: Path, n: int) -> Settings:
    """The settings of the single run the parts add up to (the part's keys without part=, out and n replaced)."""
    from omegaconf import OmegaConf

    from synth.config import settings
    from synth.registry import load_plugins

    load_plugins()
    raw = {**part.raw, "out": str(out), "n": n, "part": "", "executor": "local", "address": "", "progress": False}
    choices = {"task": part.fp["task_name"], "embodiment": raw["embodiment"]["name"]}
    return settings(OmegaConf.create({**raw, "hydra": {"runtime": {"choices": choices}}}))


def merge(out: str, spec: str, n: int | None = None) -> dict:
    """Write (or finish) the merged dataset at `out`, holding the lock on it (one writer at a time, as a run
    does); returns the store's summary."""
    parts = [open_part(p) for p in find(spec)]
    check(parts, Path(out))
    n = n or min(fmt_n(p.raw["n"]) for p in parts)
    s = settings_of(parts[0], Path(out), n)
    shards = plan(parts, n, s.shard)  # everything checked: from here on the merge writes
    root = Path(out)
    if not (root / STATE / "config.json").exists() and foreign(root) and lock.busy(root) is None:
        Store.open(root, s)  # refuses a directory that is not a dataset before a lock is written into it
    lock.acquire(root, "synth merge")
    try:
        return _merge(parts, shards, s, n)
    finally:
        lock.release(root)


def _merge(parts: list[Part], shards: list[int], s: Settings, n: int) -> dict:
    """Commit the whole run's `shards`, staged from `parts`, into `s.out` up to n episodes."""
    out = s.out
    by = {p.i: p for p in parts}
    store = Store.open(Path(out), s)
    clean_partial(store.root)
    t0, start = time.time(), store.episodes
    todo = iter([g for g in shards if g >= store.next_shard])
    # one thread stages the next shards (reading parts, stats) while this one commits (writing, fsync)
    with ThreadPoolExecutor(1) as pool:
        ahead = deque((g, pool.submit(stage, by[g % len(parts)], g, store.root, s)) for g in islice(todo, 3))
        while ahead:
            g, staged = ahead.popleft()
            path = staged.result()
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append((nxt, pool.submit(stage, by[nxt % len(parts)], nxt, store.root, s)))
            if store.episodes < n:
                store.commit(g, path, n - store.episodes)
    shutil.rmtree(store.root / STATE / "staging", ignore_errors=True)
    summ = store.summary()
    dt = max(time.time() - t0, 1e-9)
    print(
        f"merged {len(parts)} parts into {out}: {summ['episodes']} episodes, {summ['frames']} frames "
        f"({summ['episodes'] - start} written in {dt:.1f}s, {(summ['episodes'] - start) / dt:.0f} episodes/s)",
        file=sys.stderr,
    )
    return summ


def stage(p: Part, g: int, root: Path, s: Settings) -> Path:
    """Shard g of the whole run, from part p, staged under `root` as a worker stages it."""
    lo, hi = g * s.shard, (g + 1) * s.shard
    atts = p.between("meta/synth/attempts", "attempt", lo, hi) or _empty_attempts()
    ep = atts["episode_index"].to_numpy()
    ep = ep[ep >= 0]
    e0, e1 = (int(ep[0]), int(ep[-1]) + 1) if len(ep) else (0, 0)
    if len(ep) and not np.array_equal(ep, np.arange(e0, e1)):
        raise ConfigError(f"{p.name}: shard {g}'s episodes are not contiguous; run `synth inspect out={p.root}`")
    rows = p.between("meta/episodes", "episode_index", e0, e1) if e1 > e0 else None
    batch, cams = _batch(p, rows, atts, s)
    records = [
        {"attempt": a, "success": ok, "reason": r, "seconds": Json(sec), "draws": Json(d)}
        for a, ok, r, sec, d in zip(
            atts["attempt"].to_pylist(),
            atts["success"].to_pylist(),
            atts["reason"].to_pylist(),
            atts["seconds"].to_pylist(),
            atts["draws"].to_pylist(),
            strict=True,
        )
    ]
    add = (lambda tmp: _add_videos(p, rows, tmp, cams, s)) if cams else None  # before the shard is flushed, named
    path = write_shard(root, g, batch, records, None, s.control_hz, s.codec, finish=add)
    src = provenance.path(p.root, g)
    if src.exists():
        write_json(provenance.path(root, g), json.loads(src.read_text()))
    return path


def _empty_attempts() -> pa.Table:
    return pa.table(
        {
            "attempt": pa.array([], pa.int64()),
            "success": pa.array([], pa.bool_()),
            "reason": pa.array([], pa.string()),
            "episode_index": pa.array([], pa.int64()),
            "seconds": pa.array([], pa.string()),
            "draws": pa.array([], pa.string()),
        }
    )


def _batch(p: Part, rows: pa.Table | None, atts: pa.Table, s: Settings) -> tuple[EpisodeBatch, list[str]]:
    """The episodes of `rows` as the EpisodeBatch their worker staged (frames read from the part's data files),
    and the cameras."""
    cams = list(s.cameras)
    if rows is None:
        return EpisodeBatch.of([]), cams
    keys = list(dict.fromkeys(c.split("/")[1] for c in rows.column_names if c.startswith("stats/")))
    labels = [k for k in keys if k not in BASE and not k.startswith("observation.images.")]
    e0, e1 = rows["episode_index"][0].as_py(), rows["episode_index"][len(rows) - 1].as_py() + 1
    data = p.between("data", "episode_index", e0, e1)
    assert data is not None
    ok = atts.filter(pc.greater_equal(atts["episode_index"], 0))
    return (
        EpisodeBatch(
            state=_array(data["observation.state"]),
            action=_array(data["action"]),
            labels={k: _array(data[k]) for k in labels},
            lengths=rows["length"].to_numpy(),
            attempts=ok["attempt"].to_numpy(),
            instructions=[t[0] for t in rows["tasks"].to_pylist()],
            metas=[Json(m) for m in rows["synth/meta"].to_pylist()],
        ),
        cams,
    )


def _array(col: pa.ChunkedArray) -> np.ndarray:
    """A data column as numpy: (N,) scalar or (N, D) fixed-size list."""
    arr = col.combine_chunks()
    if pa.types.is_fixed_size_list(arr.type):
        return arr.flatten().to_numpy().reshape(len(arr), arr.type.list_size)
    return arr.to_numpy()


def _add_videos(p: Part, rows: pa.Table | None, path: Path, cams: list[str], s: Settings) -> None:
    """Image stats into the staged episodes table, and each camera's mp4 of the shard (linked, else copied)."""
    if rows is None:
        return
    eps = _read(path / "episodes.arrow")
    shapes = json.loads((eps.schema.metadata or {}).get(b"shapes", b"{}"))
    lengths = rows["length"].to_numpy()
    for cam in cams:
        key = f"observation.images.{cam}"
        for name in (c for c in rows.column_names if c.startswith(f"stats/{key}/")):
            v = np.array(rows[name].to_pylist())  # (E, 3, 1, 1): float, the count int
            eps = eps.append_column(name, pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v[0].size))
            shapes[name] = list(v.shape[1:])
        # the mp4 of the file holding the shard's last episode holds the shard's episodes from its first on
        chunk, number = rows[f"videos/{key}/chunk_index"][-1].as_py(), rows[f"videos/{key}/file_index"][-1].as_py()
        t0 = rows[f"videos/{key}/from_timestamp"].to_numpy()
        if abs(t0[-1] - lengths[:-1].sum() / s.control_hz) > 1e-6:
            raise ConfigError(f"{p.name}: the video of shard episodes {rows['episode_index'][0]}.. is split")
        src = p.root / chunked(fmt.VIDEO_PATH, chunk * fmt.CHUNKS_SIZE + number, video_key=key)
        try:
            os.link(src, path / f"{cam}.mp4")
        except OSError:
            shutil.copyfile(src, path / f"{cam}.mp4")
    _write(eps.replace_schema_metadata({"shapes": json.dumps(shapes)}), path / "episodes.arrow.tmp")
    os.replace(path / "episodes.arrow.tmp", path / "episodes.arrow")  # the table read is mapped from the old file
