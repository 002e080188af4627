"""part=i/K: one of K disjoint, deterministic slices of a run's attempts, for array jobs with no scheduler.

The whole run (seed, n) cuts its attempts into shards of `shard` attempts and keeps the first n successful
attempts in attempt order. Part i of K runs the shards g with g % K == i, in order, as its own dataset (its
shard k is the run's shard k*K + i). `synth merge` takes shard 0 from part 0, shard 1 from part 1, ... until
it holds n episodes: exactly the whole run's episodes, in its order, whatever K.

n stays the whole run's n (so shard=auto picks the same shard size in every part and in the merge). A part
writes ceil(n/K) + shard episodes: its share plus one shard's worth, so that it covers every one of its
shards the merge reaches unless the success rate differs between parts by more than a shard's episodes.
"""

from __future__ import annotations

import dataclasses
import math

from synth.config import Settings


def episodes(n: int, k: int, shard: int) -> int:
    """Episodes part i of k writes for a whole run of n: ceil(n/k) + shard (n itself when k is 1)."""
    return n if k == 1 else math.ceil(n / k) + shard


def n_for(needed: int, k: int, shard: int) -> int:
    """The whole-run n whose part writes at least `needed` episodes (the inverse of `episodes`)."""
    return needed if k == 1 else k * max(needed - shard, 1)


def target(s: Settings) -> Settings:
    """The settings a part runs with: n replaced by the episodes this part writes."""
    if s.part is None:
        return s
    return dataclasses.replace(s, n=episodes(s.n, s.part[1], s.shard))
