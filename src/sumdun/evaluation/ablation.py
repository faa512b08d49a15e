"""Ablation runner: train each model configuration of the paper's Tables 4 and 5 under one
budget (same data, epochs, seed and optimiser), evaluate each best checkpoint on the test files
and print the PSNR table in the paper's layout.

``sumdun ablate --config configs/ablation_dgsamples.yaml --data TEST.h5 ... --out runs/ablation``
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Sequence

from ..models import ABLATIONS

__all__ = ["run_ablations", "ablation_table"]

_T4_COLUMNS = (("degradation", "3D operator"), ("prox", "3D prox. network"),
               ("multiscale", "multi-scale"))


def _tag(name: str) -> str:
    """``"T4-I (2D op, ...)"`` -> ``"T4-I"``; ``"no SPIM"`` -> ``"no-SPIM"``."""
    return name.split(" ")[0] if name.startswith("T") else name.replace(" ", "-")


def _mark(v) -> str:
    return "✓" if v in (True, "3d") else "✗"


def ablation_table(psnr: dict[str, dict[str, float]], names: Sequence[str]) -> str:
    """Markdown in the paper's layout: Table 4 rows with ✓/✗ columns for the 3D operator,
    3D proximal network and multi-scale, Table 5 rows by SPIM variant; one PSNR column per
    test set, best bold. ``psnr = {ablation name: {set: dB}}``."""
    sets = list(dict.fromkeys(s for v in psnr.values() for s in v))
    best = {s: max(v[s] for v in psnr.values() if s in v) for s in sets}
    lines = []
    t4 = [n for n in names if n.startswith("T4")]
    t5 = [n for n in names if not n.startswith("T4")]
    for title, group, cols in (("Table 4: operators, proximal network, scales", t4, True),
                               ("Table 5: semantic prompt injection (SPIM)", t5, False)):
        if not group:
            continue
        head = ["config"] + ([c for _, c in _T4_COLUMNS] if cols else ["SPIM"]) + \
            [f"PSNR {s}" for s in sets]
        lines += [f"**{title}**", "", "| " + " | ".join(head) + " |",
                  "|---|" + "---|" * (len(head) - 2) + "---:|"]
        for n in group:
            cfg = ABLATIONS[n]
            flags = [_mark(cfg.get(k, "3d" if k != "multiscale" else True)) for k, _ in
                     _T4_COLUMNS] if cols else [cfg.get("spim", "")]
            cells = []
            for s in sets:
                v = psnr.get(n, {}).get(s)
                cells.append("–" if v is None else (f"**{v:.3f}**" if v == best[s]
                                                    else f"{v:.3f}"))
            lines.append("| " + " | ".join([_tag(n)] + flags + cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_ablations(config: str | os.PathLike, data: Iterable[str | os.PathLike],
                  out: str | os.PathLike = "runs/ablation", names: Sequence[str] | None = None,
                  epochs: int | None = None, progress: bool = True) -> dict:
    """Train and evaluate each ablation (default: all of :data:`sumdun.models.ABLATIONS`).

    ``config`` is a training YAML (:func:`sumdun.engine.train.load_config`); each ablation
    trains from it with its model overrides added, in ``<out>/<T4-I...>/``, and resumes when
    interrupted. Returns ``{"psnr": {name: {set: dB}}, "markdown": table}`` and writes
    ``<out>/ablation.md``.
    """
    from ..engine.train import fit, load_config
    from ..io.atomic import atomic_path
    from .runner import evaluate

    base = load_config(config)
    by_tag = {_tag(n): n for n in ABLATIONS}
    names = [by_tag.get(n, n) for n in (names or ABLATIONS)]
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise KeyError(f"unknown ablations {unknown}; available: {list(ABLATIONS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = [Path(p) for p in data]
    psnr: dict[str, dict[str, float]] = {}
    for n in names:
        run_dir = out / _tag(n)
        cfg = dataclasses.replace(base, out_dir=str(run_dir),
                                  model_overrides={**base.model_overrides, **ABLATIONS[n]},
                                  progress=progress)
        if epochs is not None:
            cfg.epochs = epochs
        done = (run_dir / "best" / "meta.json").exists() and (run_dir / "done").exists()
        if not done:
            fit(cfg, resume=(run_dir / "last" / "meta.json").exists())
            (run_dir / "done").write_text("trained\n")
        res = evaluate([str(run_dir / "best")], data=data, out=run_dir / "eval",
                       progress=progress)
        psnr[n] = {s: per[run_dir.name]["PSNR"][0] for s, per in res["rr"].items()}
    md = ablation_table(psnr, names)
    with atomic_path(out / "ablation.md") as tmp:
        tmp.write_text(md)
    return {"psnr": psnr, "markdown": md}
