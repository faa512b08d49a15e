"""Latency of the text encoders and describers on this CPU.

Run: python benchmarks/prompts.py   (target: bge-small under 20 ms per sentence on one thread)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import landcover_scene  # noqa: E402

from sumdun.prompts import StatsDescriber, get_encoder  # noqa: E402

SENTENCES = [
    "A WorldView-3 scene with 8 multispectral bands at a 1:4 resolution ratio, dominated by "
    "vegetation (60%) with bare soil (18%), built-up (14%) and water (8%).",
    "Dense urban area with tall buildings, busy roads and almost no vegetation.",
    "Farmland with large rectangular crop fields and a few farm houses.",
    "A calm lake surrounded by dense forest, dark water and green trees.",
]


def per_call(fn, n: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    rows = []
    enc = get_encoder("bge-small", threads=1)
    ms, pan, _ = landcover_scene(0, bands=8, h=32, w=32)
    full = StatsDescriber().describe(ms, pan, "wv3")  # a whole stats description
    rows.append((f"bge-small, 1 thread, stats text {len(full.split())} words",
                 per_call(lambda: enc.encode(full), 20)))
    for s in SENTENCES:
        rows.append((f"bge-small, 1 thread, {len(s.split())} words", per_call(lambda: enc.encode(s), 20)))
    h = get_encoder("hash")
    rows.append(("hash encoder", per_call(lambda: h.encode(SENTENCES[0]), 200)))
    ms, pan, _ = landcover_scene(0, bands=8, h=32, w=32)
    d = StatsDescriber()
    rows.append(("stats describer, MS 32x32x8 + PAN 128x128",
                 per_call(lambda: d.describe(ms, pan, "wv3"), 20)))
    ms, pan, _ = landcover_scene(0, bands=8, h=256, w=256)
    rows.append(("stats describer, MS 256x256x8 + PAN 1024x1024",
                 per_call(lambda: d.describe(ms, pan, "wv3"), 3)))
    print(f"{'what':48} {'ms per call':>12}")
    for name, sec in rows:
        print(f"{name:48} {1000 * sec:12.2f}")
    worst = max(sec for name, sec in rows if name.startswith("bge") and "stats" not in name)
    print(f"bge-small slowest single sentence: {1000 * worst:.1f} ms (target < 20 ms): "
          f"{'met' if worst < 0.020 else 'NOT met'}")


if __name__ == "__main__":
    main()
