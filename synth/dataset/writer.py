"""The dataset on disk: staged shards committed, in shard order, into a LeRobot v3.0 dataset.

Every file is written under a temporary name, fsynced, and renamed (and its directory fsynced); the
manifest line recording its size and checksum follows, and `.synth/progress.json` is written last, so a
process killed (or a machine losing power) at any point leaves the dataset as of its last completed commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth.dataset import format as fmt
from synth.dataset import integrity, lock
from synth.dataset.durable import fsync, makedirs, naming, write_atomic, write_json
from synth.dataset.faults import fault
from synth.dataset.lock import STATE, foreign
from synth.dataset.recovery import PENDING, recover
from synth.dataset.staging import clean_partial, discard, read_shard, table_stats
from synth.dataset.stats import StatsAccumulator, nested, stats_from_row, stats_to_json
from synth.embodiment import load
from synth.errors import ConfigError

ATTEMPTS_PATH = "meta/synth/attempts/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
# what the episodes of a config are: bumped when a default changes them (the same command, other episodes)
DATASET_VERSION = 3  # 2: pick_place steps its physics at 5 ms by default (was 2 ms); 3: mode=kinematic detours
# a transit whose straight segment collides (those attempts succeed), place_in_container and open_drawer step at
# 5 ms too, and physics mode plans pick-and-place tasks with the batched planner by default (planner=per_attempt:
# 2's plans)


def chunked(template: str, i: int, **kw) -> str:
    return template.format(chunk_index=i // fmt.CHUNKS_SIZE, file_index=i % fmt.CHUNKS_SIZE, **kw)


class Store:
    """A dataset being written; `open` creates it or resumes it."""

    def __init__(self, root: Path, s, progress: dict, tasks: dict[str, int]):
        self.root, self.s, self.p, self.tasks = root, s, progress, tasks
        self._pending: list[tuple[Path, Path]] = []
        emb = load(s.embodiment)
        self.card = emb.card(s.control_hz, s.action, s.cameras)
        if s.mode != "physics":
            self.card["mode"] = s.mode
            self.card["state"]["meaning"] = "planned joint positions and gripper width (kinematic: no physics)"
        self.features = fmt.features(
            state_names=emb.action_names,
            action_names=self.card["action"]["names"],
            labels=fmt.label_features(s.task, s.action, emb.action_names, emb.ee_names),
            cameras={c: s.resolution for c in s.cameras},
            fps=s.control_hz,
            codec=s.codec,
        )
        self.acc = StatsAccumulator()
        for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            for row in pq.read_table(path).to_pylist():
                self.acc.add(stats_from_row(row))

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: Path, s) -> Store:
        fp = s.fingerprint()
        cfg_path = root / STATE / "config.json"
        if cfg_path.exists():
            try:
                old = json.loads(cfg_path.read_text())
            except ValueError:
                raise ConfigError(
                    f"out={root} is damaged: {STATE}/config.json is unreadable, so the dataset's config is unknown; "
                    "regenerate it with overwrite=true, or restore that file"
                ) from None
            if old != json.loads(json.dumps(fp)):
                if not s.overwrite:
                    new = json.loads(json.dumps(fp))
                    diff = sorted(k for k in {*fp, *old} if old.get(k) != new.get(k))  # a key either side lacks too
                    # a dataset planned per attempt (before planner= existed, or planner=per_attempt)
                    alone = "planner" in new and "planner" not in old
                    keep = "add planner=per_attempt to continue it, " if alone else ""
                    raise ConfigError(
                        f"out={root} holds a dataset made with another config (differs in {', '.join(diff)}); "
                        f"{keep}choose another out= or add overwrite=true to replace it"
                    )
                lock.wipe(root)
        elif foreign(root):
            if not s.overwrite:
                raise ConfigError(
                    f"out={root} exists and is not a synth dataset; choose another out= or add overwrite=true"
                )
            lock.wipe(root)
        if cfg_path.exists():
            integrity.check(root, "generate")  # damage stops the run before anything is written
        root.mkdir(parents=True, exist_ok=True)
        if not cfg_path.exists():
            write_json(cfg_path, fp)
        prog_path = root / STATE / "progress.json"
        progress: dict = (
            json.loads(prog_path.read_text())
            if prog_path.exists()
            else {
                "next_shard": 0,
                "skip": 0,
                "episodes": 0,
                "frames": 0,
                "files": 0,
                "attempts": 0,
                "successes": 0,
                "failures": {},
                "last_attempt": -1,
                "attempt_files": 0,
            }
        )
        tasks_path = root / "meta" / "tasks.parquet"
        tasks = {}
        if tasks_path.exists():
            df = pd.read_parquet(tasks_path)
            tasks = {str(t): int(i) for t, i in zip(df.index, df["task_index"], strict=True)}
        recover(root, progress)
        clean_partial(root, s.cameras)
        tasks = {t: i for t, i in tasks.items() if i < int(progress.get("tasks", 0))}  # drop an interrupted commit's
        store = cls(root, s, progress, tasks)
        template = root / STATE / "features.json"  # what `synth repair` rebuilds a lost info.json from
        if not template.exists():
            info = store._info()
            write_json(template, {k: info[k] for k in ("fps", "robot_type", "features")} | {"video": store.s.cameras})
        if progress["episodes"]:
            store._write_meta()
        store._write_synth_meta()
        return store

    def _write_synth_meta(self) -> None:
        t = self.s.task
        write_json(
            self.root / "meta" / "synth.json",
            {
                "generator": "synth",
                "task": t.name,
                "description": t.description,
                "phases": list(t.phases),
                "failure_reasons": list(t.failure_reasons()),
                "embodiments": {self.card["robot"]: self.card},
                "held_out_instructions": self.s.held_out,
                "mode": self.s.mode,
                "dataset_version": DATASET_VERSION,
                **({"physics": self.s.physics.record()} if self.s.physics and self.s.mode == "physics" else {}),
                "config": self.s.raw,
                **({"focus": self.s.focus.record()} if getattr(self.s, "focus", None) is not None else {}),
            },
        )

    # ------------------------------------------------------------------ state
    @property
    def episodes(self) -> int:
        return self.p["episodes"]

    @property
    def attempts(self) -> int:
        return self.p["attempts"]

    @property
    def next_shard(self) -> int:
        return self.p["next_shard"]

    def success_rate(self) -> float:
        return self.p["successes"] / self.p["attempts"] if self.p["attempts"] else 0.9

    def summary(self) -> dict:
        p = self.p
        return {
            "episodes": p["episodes"],
            "frames": p["frames"],
            "attempts": p["attempts"],
            "success_rate": p["successes"] / max(p["attempts"], 1),
            "failures": dict(p["failures"]),
        }

    # ------------------------------------------------------------------ commit
    def commit(self, k: int, path: Path, limit: int) -> int:
        """Append shard k's episodes (at most `limit`, after those already taken) to the dataset."""
        assert k == self.p["next_shard"], (k, self.p["next_shard"])
        commit = int(self.p.get("commits", 0))
        before = json.loads(json.dumps(self.p))
        fault("staged", commit)
        frames, eps, atts = read_shard(path)
        skip = self.p["skip"]
        take = min(limit, max(eps.num_rows - skip, 0))
        attempt = eps["attempt"].to_numpy()
        lengths_all = eps["length"].to_numpy()
        lengths = lengths_all[skip : skip + take]
        att_index = atts["attempt"].to_numpy()
        end = self.s.attempts_of(k)[-1]  # the shard's last attempt
        truncated = bool(len(att_index)) and att_index[-1] < end  # stopped at enough episodes
        partial = skip + take < eps.num_rows or truncated
        if partial:  # the next commit of this shard continues after the last episode taken
            last_attempt = int(attempt[skip + take - 1]) if take else self.p["last_attempt"]
        else:
            last_attempt = end
        new_att = (self.p["last_attempt"] < att_index) & (att_index <= last_attempt)
        if take:
            assert frames is not None
            self._stage_episodes(frames, eps, path, skip, take, lengths_all)
        if new_att.any():
            self._stage_attempts(atts.filter(pa.array(new_att)), attempt[skip : skip + take])
        # bookkeeping: tasks, info, stats, then progress last
        p = self.p
        p["episodes"] += take
        p["frames"] += int(lengths.sum())
        p["files"] += 1 if take else 0
        p["attempts"] += int(new_att.sum())
        p["successes"] += take
        for reason in atts["reason"].filter(pa.array(new_att)).to_pylist():
            if reason:
                p["failures"][reason] = p["failures"].get(reason, 0) + 1
        p["last_attempt"] = last_attempt
        p["attempt_files"] += 1 if new_att.any() else 0
        p["tasks"] = len(self.tasks)
        files = self._publish(commit)
        p["next_shard"], p["skip"] = (k, skip + take) if partial else (k + 1, 0)
        self._write_meta(commit)
        after = {**p, "commits": commit + 1}
        integrity.append(self.root, {"commit": commit, "before": before, "after": after, "files": files})
        fault("manifest", commit)
        p["commits"] = commit + 1
        write_json(self.root / STATE / "progress.json", p)
        fault("progress", commit)
        discard(path, commit)
        return take

    def _stage_episodes(
        self, frames: pa.Table, eps: pa.Table, path: Path, skip: int, take: int, lengths_all: np.ndarray
    ) -> None:
        """Stage the frames, videos and episode rows of the shard's episodes skip .. skip + take - 1 (take > 0)
        as the dataset's next data file; `lengths_all` (E,) the shard's episode lengths [frames]."""
        fps = self.s.control_hz
        file_i = self.p["files"]
        lengths = lengths_all[skip : skip + take]
        instructions = eps["instruction"].to_pylist()[skip : skip + take]
        sel = pc.is_in(frames["episode"], pa.array(range(skip, skip + take), pa.int64()))
        table = frames.filter(sel)
        local = table["episode"].to_numpy() - skip
        n = len(local)
        ep_index = self.p["episodes"] + local
        task_of = np.array([self._task(text) for text in instructions], np.int64)
        cols = {name: table[name] for name in table.column_names if name != "episode"}
        frame_index = table["frame_index"].to_numpy()
        cols.update(
            timestamp=pa.array((frame_index / fps).astype(np.float32)),
            episode_index=pa.array(ep_index.astype(np.int64)),
            index=pa.array(np.arange(self.p["frames"], self.p["frames"] + n, dtype=np.int64)),
            task_index=pa.array(task_of[local]),
        )
        data = fmt.data_table({name: cols[name] for name in self.features if name in cols})
        # kinematic: no dictionary pages (floats and JSON rarely repeat; 30% faster); physics: as it always was
        options = {"use_dictionary": False} if self.s.mode == "kinematic" else {}
        self._stage(self.root / chunked(fmt.DATA_PATH, file_i), lambda p: pq.write_table(data, p, **options))
        video_offsets = self._move_videos(path, file_i, lengths, int(lengths_all[:skip].sum()))
        ep_table = self._episodes_table(eps.slice(skip, take), lengths, task_of, file_i, video_offsets)
        self._stage(self.root / chunked(fmt.EPISODES_PATH, file_i), lambda p: pq.write_table(ep_table, p, **options))

    def _stage_attempts(self, rows: pa.Table, taken: np.ndarray) -> None:
        """Stage the attempt rows new to the dataset; `taken` (take,) the attempt indices of the episodes this
        commit takes: an attempt is a success here only if its episode was taken."""
        take = len(taken)
        idx = rows["attempt"].to_numpy()
        pos = np.minimum(np.searchsorted(taken, idx), max(take - 1, 0))
        hit = (taken[pos] == idx) if take else np.zeros(len(idx), bool)
        att_table = pa.table(
            {
                "attempt": pa.array(idx, pa.int64()),
                "success": pa.array(rows["success"].to_numpy(zero_copy_only=False) & hit),
                "reason": rows["reason"].combine_chunks(),
                "episode_index": pa.array(np.where(hit, self.p["episodes"] + pos, -1).astype(np.int64)),
                "seconds": rows["seconds"].combine_chunks(),
                "draws": rows["draws"].combine_chunks(),
            }
        )
        self._stage(self.root / chunked(ATTEMPTS_PATH, self.p["attempt_files"]), lambda p: pq.write_table(att_table, p))

    def _publish(self, commit: int) -> dict[str, list]:
        """Rename every staged file of this commit to its final name (all appear together) and sync their folders;
        returns their [size, digest] by path in the dataset."""
        for tmp, final in self._pending:
            os.replace(tmp, final)
            fault(f"renamed-{_kind(final.relative_to(self.root))}", commit)
        for d in {final.parent for _, final in self._pending}:
            fsync(d)
        files = {str(final.relative_to(self.root)): integrity.digest(final) for _, final in self._pending}
        self._pending = []
        return files

    def _episodes_table(
        self, eps: pa.Table, lengths: np.ndarray, task_of: np.ndarray, file_i: int, video_offsets: np.ndarray
    ) -> pa.Table:
        """meta/episodes rows of the staged episodes `eps` (E rows) taken into data file `file_i`; folds their
        stats (offset to their dataset-wide indices) into the dataset's."""
        E, fps, first = len(lengths), self.s.control_hz, self.p["episodes"]
        ints = lambda v: pa.array(np.broadcast_to(np.asarray(v, np.int64), (E,)).copy())  # noqa: E731
        start = self.p["frames"] + np.r_[0, np.cumsum(lengths)[:-1]]
        chunk, number = file_i // fmt.CHUNKS_SIZE, file_i % fmt.CHUNKS_SIZE
        episode_index = first + np.arange(E, dtype=np.int64)
        cols: dict[str, pa.Array] = {
            "episode_index": ints(episode_index),
            "tasks": pa.array([[t] for t in eps["instruction"].to_pylist()], pa.list_(pa.string())),
            "length": ints(lengths),
            "data/chunk_index": ints(chunk),
            "data/file_index": ints(number),
            "dataset_from_index": ints(start),
            "dataset_to_index": ints(start + lengths),
            "meta/episodes/chunk_index": ints(chunk),
            "meta/episodes/file_index": ints(number),
        }
        for cam in self.s.cameras:
            key = f"observation.images.{cam}"
            t0 = video_offsets / fps
            cols[f"videos/{key}/chunk_index"] = ints(chunk)
            cols[f"videos/{key}/file_index"] = ints(number)
            cols[f"videos/{key}/from_timestamp"] = pa.array(t0, pa.float64())
            cols[f"videos/{key}/to_timestamp"] = pa.array(t0 + lengths / fps, pa.float64())
        staged = table_stats(eps)
        images = {f"observation.images.{cam}" for cam in self.s.cameras}
        stats = {key: dict(v) for key, v in staged.items() if key not in images}
        offsets = {"index": start, "episode_index": episode_index, "task_index": task_of}
        for key, off in offsets.items():
            for st in stats[key]:
                if st not in ("std", "count"):
                    stats[key][st] = stats[key][st] + off.reshape(E, *[1] * (stats[key][st].ndim - 1))
        for cam in self.s.cameras:
            stats[f"observation.images.{cam}"] = staged[f"observation.images.{cam}"]
        self.acc.add_batch(stats)
        for key, per in stats.items():
            for name, v in per.items():
                cols[f"stats/{key}/{name}"] = nested(v)
        cols["synth/meta"] = eps["meta"].combine_chunks()
        cols["synth/embodiment_card"] = pa.array([json.dumps(self.card)] * E, pa.string())
        cols["synth/success"] = pa.array(np.ones(E, bool))
        return pa.table(cols)

    def _stage(self, final: Path, write) -> None:
        """Write a file of this commit under a hidden name; the commit renames them all at its end."""
        makedirs(final.parent)
        tmp = final.with_name(PENDING + final.name)
        with naming(final):
            write(tmp)
            fsync(tmp)
        self._pending.append((tmp, final))

    def _task(self, text: str) -> int:
        if text not in self.tasks:
            self.tasks[text] = len(self.tasks)
        return self.tasks[text]

    def _move_videos(self, path: Path, file_i: int, lengths: np.ndarray, before: int) -> np.ndarray:
        """Move the shard's mp4s into place (no re-encoding); (E,) frame offset of each taken episode in them,
        the shard's episodes before them holding `before` frames."""
        for cam in self.s.cameras:
            dst = self.root / chunked(fmt.VIDEO_PATH, file_i, video_key=f"observation.images.{cam}")
            self._stage(dst, lambda p, cam=cam: os.replace(path / f"{cam}.mp4", p))
        return before + np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)

    def _info(self) -> dict:
        p = self.p
        return fmt.info(
            features=self.features,
            fps=self.s.control_hz,
            robot_type=self.card["robot"],
            total_episodes=p["episodes"],
            total_frames=p["frames"],
            total_tasks=len(self.tasks),
            has_video=bool(self.s.cameras),
        )

    def _write_meta(self, commit: int = -1) -> None:
        """tasks.parquet, info.json, stats.json as of the state in memory, then their checksums."""
        p, root = self.p, self.root
        df = pd.DataFrame({"task_index": list(self.tasks.values())}, index=pd.Index(list(self.tasks), name="task"))
        write_atomic(root / "meta" / "tasks.parquet", lambda path: df.to_parquet(path))
        fault("meta-tasks", commit)
        write_json(root / "meta" / "info.json", self._info())
        fault("meta-info", commit)
        if p["episodes"]:
            write_json(root / "meta" / "stats.json", stats_to_json(self.acc.result()))
            fault("meta-stats", commit)
        integrity.write_meta_sums(root)


def _kind(path: Path) -> str:
    """The kind of a committed file, for fault steps: data, video, attempts or episodes."""
    parts = path.parts
    return (
        "data"
        if "data" in parts
        else "video"
        if "videos" in parts
        else "attempts"
        if "attempts" in parts
        else "episodes"
    )
