"""The head's memory against n: peak resident memory (VmHWM) of the `synth generate` process itself, sampled from
/proc while it runs (its workers are other processes, bounded apart). Shards in flight are capped, so the head's
peak should stay flat as n grows.

    python benchmarks/head_memory.py                                   # kinematic n=2e3, 2e4, 1e5; physics n=100, 1000
    python benchmarks/head_memory.py "mode=kinematic n=500000"         # any generate keys, one run per argument
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = ("mode=kinematic n=2000", "mode=kinematic n=20000", "mode=kinematic n=100000", "n=100", "n=1000")


def peak_rss(args: list[str], out: Path) -> tuple[float, float, str]:
    """(peak RSS of the head [MiB], wall [s], its last stderr line) of one `synth generate` run."""
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", "seed=0", "workers=2", *args]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while p.poll() is None:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    peak = max(peak, int(line.split()[1]))  # kB
        except OSError:
            pass
        time.sleep(0.5)
    last = (p.stderr.read() if p.stderr else "").strip().splitlines()[-1:] or [""]
    return peak / 1024, time.time() - t0, last[0]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="synth-headmem-"))
    print("| run | head peak RSS [MiB] | wall [s] | summary |\n|---|---|---|---|")
    try:
        for k, run in enumerate(sys.argv[1:] or RUNS):
            mib, wall, last = peak_rss(run.split(), tmp / f"d{k}")
            print(f"| `{run}` | {mib:.1f} | {wall:.0f} | {last[:90]} |", flush=True)
            shutil.rmtree(tmp / f"d{k}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
