"""Parameters, forward time, peak memory and throughput of every SUM-DUN size and ablation on
this CPU, for a 256 x 256 PAN patch (MS 64 x 64) with 4 and 8 bands, batch 1, float32,
inference (no grad). Each configuration runs in its own process, so peak RSS is its own.

The "sumdun.fuse" row is the shipped weights as a user calls them (no prompt), with the
fusion-time ``detail_gain`` pass on the reduced pair (its parameter count is not shown).

Run: python benchmarks/model.py [--quick]   (--quick skips sumdun_base, which takes minutes)
Target: sumdun_small >= 0.2 PAN Mpx/s with 8 bands (a 3340 x 3340 scene in under a minute).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def run_one(name: str, overrides: str, bands: int) -> None:
    import torch

    from sumdun.models import create_model

    torch.manual_seed(0)
    if name == "fuse":  # the shipped weights through sumdun.fuse: + the detail-gain pass
        from sumdun.fusion import fuse

        ms, pan = torch.rand(1, bands, 64, 64) * 2047, torch.rand(1, 1, 256, 256) * 2047
        fuse(ms, pan, "sumdun", sensor=None, prompt=None)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fuse(ms, pan, "sumdun", sensor=None, prompt=None)
            times.append(time.perf_counter() - t0)
        print(json.dumps({"params": 0, "seconds": min(times)}))
        return
    model = create_model(name, **json.loads(overrides)).eval()
    ms, pan = torch.rand(1, bands, 64, 64), torch.rand(1, 1, 256, 256)
    text = torch.randn(1, model.cfg.text_dim)
    with torch.inference_mode():
        model(ms, pan, text)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            model(ms, pan, text)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"params": sum(p.numel() for p in model.parameters()),
                      "seconds": min(times)}))


def measure(name: str, overrides: dict, bands: int) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--one", name, json.dumps(overrides),
                             str(bands)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError(proc.stderr.read()[-2000:])
    out = json.loads(proc.stdout.read().strip().splitlines()[-1])
    out["peak_mib"] = usage.ru_maxrss / 1024
    return out


def shipped_config() -> dict:
    """The shipped sumdun_small's model configuration, from its meta.json."""
    from sumdun.weights import weights_dir

    return json.loads((weights_dir("sumdun_small") / "meta.json").read_text())["model_config"]


def main(quick: bool) -> None:
    import torch

    from sumdun.models import ABLATIONS

    rows = [(n, "", {}) for n in ("sumdun_tiny", "sumdun_small", "sumdun_base")
            if not (quick and n == "sumdun_base")]
    rows.insert(2, ("sumdun_small", "as shipped (its meta.json)", shipped_config()))
    rows.insert(3, ("fuse", "as shipped, sumdun.fuse (+ detail gain)", {}))
    rows += [("sumdun_small", label, o) for label, o in ABLATIONS.items()]
    print(f"SUM-DUN forward, PAN 256 x 256, batch 1, float32, {torch.get_num_threads()} threads")
    print(f"{'model':14} {'ablation':38} {'bands':>5} {'params':>9} {'ms':>8} {'peak MiB':>9} "
          f"{'Mpx/s':>7}")
    for name, label, overrides in rows:
        for bands in (4, 8):
            r = measure(name, overrides, bands)
            print(f"{name:14} {label or '-':38} {bands:5d} {r['params']:9d} "
                  f"{1000 * r['seconds']:8.1f} {r['peak_mib']:9.0f} "
                  f"{256 * 256 / r['seconds'] / 1e6:7.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        run_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main("--quick" in sys.argv)
