"""``sumdun evaluate``: every method on every sample of PanCollection test files, paper tables.

Per-sample results are appended to ``<out>/samples.jsonl`` as they are computed, so an
interrupted run loses nothing already computed and a re-run with the same protocol resumes.
A method that raises on a sample is recorded with its error and the run goes on.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._deps import require
from ..io.atomic import atomic_path
from . import tables

__all__ = ["evaluate", "method_spec", "expand_methods", "training_budgets", "PAPER_METHODS"]


#: ``--methods paper``: the rows of the paper's Tables 2 and 3 (two classical methods, the five
#: deep methods it compares with, SUM-DUN)
PAPER_METHODS = ("bdsd", "pracs", "awfln", "fusionmamba", "panmamba", "wfanet", "tmdiff",
                 "sumdun")


def expand_methods(names: Sequence[str]) -> list[str]:
    """Method names with the presets expanded: ``paper`` (:data:`PAPER_METHODS`), ``all``
    (every registered method), ``classical`` and ``neural`` (one family)."""
    from ..fusion import get_method, list_methods

    out: list[str] = []
    for n in names:
        if n == "paper":
            out += PAPER_METHODS
        elif n in ("all", "classical", "neural"):
            out += [m for m in list_methods() if n == "all" or get_method(m).family == n]
        else:
            out.append(n)
    return list(dict.fromkeys(out))


def method_spec(name: str) -> tuple[str, str, dict]:
    """``(label, registry name, options)`` for a registry name, ``METHOD:WEIGHTS`` (a network
    with other shipped weights, labelled by them) or a checkpoint folder (of SUM-DUN or of a
    baseline: its ``meta.json`` names the model; a folder called ``best`` or ``last`` is
    labelled by its parent: ``runs/pnn_8b/best`` -> ``pnn_8b``)."""
    p = Path(name)
    if p.is_dir() and (p / "meta.json").exists():
        model = json.loads((p / "meta.json").read_text()).get("model_name", "")
        from ..models import BASELINES

        method = model if model in BASELINES else "sumdun"
        label = p.resolve().parent.name if p.name in ("best", "last") else p.name
        return label, method, {"weights": str(p.resolve())}
    from ..fusion import get_method

    if ":" in name:  # method:shipped-weights, e.g. sumdun:sumdun_small_same_budget
        method, weights = name.split(":", 1)
        from ..weights import available

        if get_method(method).family != "neural" or weights not in available():
            raise ValueError(f"{name!r}: METHOD:WEIGHTS takes a network and shipped weights "
                             f"(available: {', '.join(available())})")
        return weights, method, {"weights": weights}
    get_method(name)  # unknown names fail before any work starts
    return name, name, {}


def training_budgets(specs) -> list[str]:
    """One line per trained network in ``specs``: its weights, epochs, steps x batch, time and
    hardware, from each checkpoint's ``meta.json`` (``budget``, written by ``sumdun train``;
    ``provenance`` for the shipped SUM-DUN, trained in several steps)."""
    from ..fusion import get_method
    from ..weights import available, weights_dir

    lines = []
    for label, name, opts in specs:
        if get_method(name).family != "neural":
            continue
        if opts.get("weights") or name == "sumdun":
            w = Path(opts.get("weights") or "sumdun_small")
            folders = [w if w.is_dir() else weights_dir(str(w))]
        else:
            folders = [weights_dir(w) for w in available() if w.startswith(f"{name}_")]
        parts = []
        for f in folders:
            meta = json.loads((f / "meta.json").read_text())
            b, tc = meta.get("budget"), meta.get("train_config", {})
            if b:
                parts.append(f"{f.name}: {meta.get('epoch', 0) + 1} epoch(s), {b['steps']} steps "
                             f"of {tc.get('batch_size')}, {b['train_seconds'] / 60:.1f} min on "
                             f"{b['hardware']}")
            elif meta.get("provenance"):  # several steps: "21 of 25 (step 1), 9 of 14 ..."
                runs = [int(n) for n in re.findall(r"(\d+) of \d+",
                                                   meta["provenance"].get("epochs_run", ""))]
                what = (f"{sum(runs)} epochs in {len(runs)} steps" if runs else "see meta.json")
                mc = meta.get("model_config", {})
                fusion = [f"{k}: {mc[k]}" for k in ("consistency", "detail_gain") if mc.get(k)]
                then = (f", then `{'`, `'.join(fusion)}` (no training)" if fusion else "")
                parts.append(f"{f.name}: {what} ({meta['provenance'].get('hardware', '')}; "
                             f"meta.json provenance){then}")
        lines.append(f"- {label}: " + ("; ".join(parts) or "budget not recorded"))
    return lines


def _set_name(path: Path) -> str:
    """``wv3_test.h5`` / ``wv3_test_fr.h5`` -> ``wv3``."""
    stem = path.stem
    for suffix in ("_test_fr", "_test", "_fr"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _load_rows(samples: Path) -> dict:
    """``{(set, protocol, method, index): row}`` from the log, the latest row per key."""
    rows = {}
    if samples.exists():
        for line in samples.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash: recompute that sample
                continue
            rows[(r["set"], r["protocol"], r["method"], r["index"])] = r
    return rows


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def evaluate(methods: Sequence[str], data: Iterable[str | os.PathLike] = (),
             full_resolution: Iterable[str | os.PathLike] = (), out: str | os.PathLike = "eval",
             border: int = 0, block: int = 32, clip: bool = True, limit: int | None = None,
             progress: bool = True, fresh: bool = False) -> dict:
    """Evaluate ``methods`` and write ``table.md``, ``table.tex``, ``results.csv``,
    ``results.json`` (with the protocol) and ``samples.jsonl`` to ``out``.

    Args:
        methods: registry names (``sumdun methods``) or SUM-DUN checkpoint folders.
        data: reduced-resolution PanCollection files (``gt``, ``ms``, ``pan``): Q2n (Q4/Q8 by
            band count), Q_avg, SAM (degrees), ERGAS, SCC, PSNR against ``gt``.
        full_resolution: files with ``ms`` and ``pan`` only: D_lambda (Khan), D_S, HQNR.
        border: pixels cut from each side before the reduced-resolution indices.
        block: Q2n / Q / D_S block size (toolbox 32).
        clip: clip fused values to ``[0, 2**bits - 1]`` first (the toolbox's ``thvalues``).
        limit: first ``limit`` samples of each file only.
        fresh: discard earlier per-sample results in ``out`` instead of resuming.

    Returns:
        ``{"rr": summary, "fr": summary, "failures": [...], "protocol": {...}}``.
    """
    from .. import __version__
    from ..fusion import fuse, method_options
    from ..io import read_h5
    from ..metrics import full_resolution as fr_indices
    from ..metrics import reduced_resolution

    specs = [method_spec(m) for m in expand_methods(methods)]
    if not specs:
        raise ValueError("no methods given; e.g. --methods sumdun,bt-h,bdsd")
    data, full_resolution = [Path(p) for p in data], [Path(p) for p in full_resolution]
    if not data and not full_resolution:
        raise ValueError("nothing to evaluate: give --data TEST.h5 and/or --full-resolution FR.h5")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    protocol = {"border": border, "block": block, "clip": clip, "sam_unit": "degrees",
                "q2n_quantize": True, "data_range": "2**bits - 1 of each file",
                "fr": "D_lambda_K (toolbox), D_S (q=1), HQNR", "code_version": __version__}
    key = json.dumps({k: protocol[k] for k in ("border", "block", "clip")}, sort_keys=True)
    samples = out / "samples.jsonl"
    if fresh and samples.exists():
        samples.unlink()
    rows = _load_rows(samples)  # a failed sample is tried again; its new row wins

    jobs = []
    for kind, files in (("rr", data), ("fr", full_resolution)):
        for path in files:
            d = read_h5(path, keys=("gt", "ms", "pan") if kind == "rr" else ("ms", "pan"))
            need = ("gt", "ms", "pan") if kind == "rr" else ("ms", "pan")
            missing = [k for k in need if k not in d]
            if missing:
                raise ValueError(f"{path} lacks {missing}: reduced-resolution files need gt, "
                                 "ms and pan; full-resolution files ms and pan")
            n = len(d["ms"]) if limit is None else min(limit, len(d["ms"]))
            jobs.append((kind, path, _set_name(path) + ("" if kind == "rr"
                                                                    else " (full res.)"), d, n))
    total = sum(n for *_, n in jobs) * len(specs)
    tqdm = require("tqdm").tqdm
    bar = tqdm(total=total, unit="sample", disable=not progress, desc="evaluate")
    with samples.open("a") as log:
        for kind, path, set_name, d, n in jobs:
            attrs = d["attrs"]
            sensor, ratio = attrs.get("sensor"), int(attrs.get("ratio", 4))
            top = float(2 ** int(attrs.get("bits", 11)) - 1)
            for label, name, opts in specs:
                for i in range(n):
                    bar.update(1)
                    prev = rows.get((set_name, key, label, i))
                    if prev is not None and not prev.get("error"):
                        continue  # computed by an earlier run
                    ms = d["ms"][i].astype(np.float64)
                    pan = d["pan"][i].astype(np.float64)
                    row = {"set": set_name, "protocol": key, "method": label, "index": i,
                           "file": str(path)}
                    t0 = time.perf_counter()
                    try:
                        extra = {}
                        if "prompt_meta" in method_options(name):  # the prompt of training
                            from ..prompts import prompt_meta

                            extra["prompt_meta"] = prompt_meta(attrs)
                        f = np.asarray(fuse(ms, pan, method=name, sensor=sensor, ratio=ratio,
                                            **opts, **extra))
                        row["seconds"] = time.perf_counter() - t0
                        if clip:
                            f = np.clip(f, 0, top)
                        if kind == "rr":
                            row.update(reduced_resolution(f, d["gt"][i].astype(np.float64),
                                                          ratio=ratio, border=border,
                                                          data_range=top, block=block))
                        else:
                            row.update(fr_indices(f, ms, pan, sensor, ratio, block=block))
                    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
                        row["error"] = f"{type(err).__name__}: {err}"
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    rows[(set_name, key, label, i)] = row
    bar.close()
    # this run's sets, methods and samples only (the log may hold others from earlier runs)
    rows = [rows[k] for k in ((set_name, key, label, i) for _, _, set_name, _, n in jobs
                              for label, _, _ in specs for i in range(n)) if k in rows]
    failures = [{k: r[k] for k in ("set", "method", "index", "error")} for r in rows
                if r.get("error")]
    rr = tables.summarise([r for r in rows if not r["set"].endswith("(full res.)")],
                          tables.RR_METRICS)
    fr = tables.summarise([r for r in rows if r["set"].endswith("(full res.)")],
                          tables.FR_METRICS)
    summary = {**rr, **fr}
    metrics = tables.RR_METRICS + tables.FR_METRICS
    md = tables.to_markdown(summary, metrics)
    budgets = training_budgets(specs)
    if budgets:
        md += "\nTraining of each network (its checkpoint's meta.json):\n\n" + "\n".join(budgets) \
            + "\n"
    if failures:
        md += "\nFailed samples (excluded from the means):\n\n" + "\n".join(
            f"- {f['set']} / {f['method']} / sample {f['index']}: {f['error']}"
            for f in failures) + "\n"
    _write(out / "table.md", md)
    _write(out / "table.tex", tables.to_latex(summary, metrics))
    _write(out / "results.csv", tables.to_csv(summary, metrics))
    _write(out / "results.json", tables.to_json(summary, protocol, failures))
    return {"rr": rr, "fr": fr, "failures": failures, "protocol": protocol, "markdown": md}
