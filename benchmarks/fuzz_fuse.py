"""Generated inputs through ``sumdun fuse``, more of them than CI runs.

``python benchmarks/fuzz_fuse.py [--examples N]`` (default 5000) runs
``tests/test_generated_inputs.py`` with ``SUMDUN_FUZZ_EXAMPLES=N`` and prints how many examples
were tried, how they ended (exit 0, a clean exit 1 or 2 by message) and the failures found (a
failure prints the falsifying case, to be kept as an ``@example`` in the test).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=5000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics", "tests/test_generated_inputs.py"],
        cwd=ROOT, text=True, capture_output=True,
        env={**os.environ, "SUMDUN_FUZZ_EXAMPLES": str(args.examples)})
    took = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    tried = sum(int(a) + int(b) for a, b in re.findall(r"(\d+) passing, (\d+) failing", text))
    failing = sum(int(b) for _, b in re.findall(r"(\d+) passing, (\d+) failing", text))
    ends = Counter()
    for pct, what in re.findall(r"\* ([\d.]+)%, (exit \d)(?::|\s|$)", text):
        ends[what] += float(pct)
    print(f"| examples tried | failing | exit 0 | exit 1 | exit 2 | s |\n|---:|---:|---:|---:|---:|---:|")
    print(f"| {tried} | {failing} | {ends['exit 0']:.0f} % | {ends['exit 1']:.0f} % | "
          f"{ends['exit 2']:.0f} % | {took:.0f} |")
    if proc.returncode:
        print(text[-6000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
