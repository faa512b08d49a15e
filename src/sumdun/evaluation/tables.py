"""Paper-style result tables: mean ± std per method and metric, best bold, second underlined.

``summarise(rows)`` turns per-sample rows ``{"set", "method", "index", <metric>: value}`` into
``{set: {method: {metric: (mean, std, n)}}}``; the formatters render one table per set in
Markdown, LaTeX, CSV or JSON. Standard deviation is the sample one (N - 1), as MATLAB ``std``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Iterable

__all__ = ["HIGHER_IS_BETTER", "RR_METRICS", "FR_METRICS", "summarise", "ranks",
           "to_markdown", "to_latex", "to_csv", "to_json"]

RR_METRICS = ("Q2n", "Q_avg", "SAM", "ERGAS", "SCC", "PSNR")
FR_METRICS = ("D_lambda", "D_S", "HQNR")
HIGHER_IS_BETTER = {"Q2n": True, "Q_avg": True, "SAM": False, "ERGAS": False, "SCC": True,
                    "PSNR": True, "D_lambda": False, "D_S": False, "HQNR": True}
ARROW = {True: "↑", False: "↓"}
LATEX_ARROW = {True: r"$\uparrow$", False: r"$\downarrow$"}

Summary = dict  # {set: {method: {metric: (mean, std, n)}}}


def summarise(rows: Iterable[dict], metrics: Iterable[str]) -> Summary:
    """Mean, sample std (0 for one sample) and count of each metric over the rows that have it
    (rows with an ``error`` are skipped). Sets and methods keep their first-seen order."""
    values: dict = {}
    for r in rows:
        if r.get("error"):
            continue
        per = values.setdefault(r["set"], {}).setdefault(r["method"], {})
        for k in metrics:
            v = r.get(k)
            if v is not None and math.isfinite(v):
                per.setdefault(k, []).append(float(v))
    out: Summary = {}
    for s, methods in values.items():
        for m, per in methods.items():
            for k, vals in per.items():
                n = len(vals)
                mean = sum(vals) / n
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
                out.setdefault(s, {}).setdefault(m, {})[k] = (mean, std, n)
    return out


def ranks(table: dict, metric: str, decimals: int) -> dict:
    """``{method: 1 | 2}`` for the best and second-best mean of ``metric`` as printed
    (rounded to ``decimals``; ties share the rank)."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    vals = {m: round(v[metric][0], decimals) for m, v in table.items() if metric in v}
    distinct = sorted(set(vals.values()), reverse=higher)
    out = {}
    for m, v in vals.items():
        if v == distinct[0]:
            out[m] = 1
        elif len(distinct) > 1 and v == distinct[1]:
            out[m] = 2
    return out


def _cells(table: dict, metrics, decimals: int, bold, under, std: bool):
    marks = {k: ranks(table, k, decimals) for k in metrics}
    for m, per in table.items():
        cells = []
        for k in metrics:
            if k not in per:
                cells.append("–")
                continue
            mean, sd, _ = per[k]
            txt = f"{mean:.{decimals}f}" + (f" ± {sd:.{decimals}f}" if std else "")
            rank = marks[k].get(m)
            cells.append(bold(txt) if rank == 1 else under(txt) if rank == 2 else txt)
        yield m, cells


def to_markdown(summary: Summary, metrics, decimals: int = 4, std: bool = True,
                titles: dict | None = None) -> str:
    """One Markdown table per set; best **bold**, second <u>underlined</u>."""
    parts = []
    for s, table in summary.items():
        ms = [k for k in metrics if any(k in v for v in table.values())]
        n = max(v[k][2] for v in table.values() for k in ms) if ms else 0
        parts.append(f"**{(titles or {}).get(s, s)}** ({n} samples, mean ± std)\n")
        parts.append("| method | " + " | ".join(
            f"{k} {ARROW[HIGHER_IS_BETTER.get(k, True)]}" for k in ms) + " |")
        parts.append("|---|" + "---:|" * len(ms))
        for m, cells in _cells(table, ms, decimals, lambda t: f"**{t}**",
                               lambda t: f"<u>{t}</u>", std):
            parts.append(f"| {m} | " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _tex(s: str) -> str:
    return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def to_latex(summary: Summary, metrics, decimals: int = 4, std: bool = True) -> str:
    """One ``tabular`` per set (booktabs); best ``\\textbf``, second ``\\underline``."""
    parts = []
    for s, table in summary.items():
        ms = [k for k in metrics if any(k in v for v in table.values())]
        parts += [f"% {s}", r"\begin{tabular}{l" + "c" * len(ms) + "}", r"\toprule",
                  "Method & " + " & ".join(
                      f"{_tex(k)} {LATEX_ARROW[HIGHER_IS_BETTER.get(k, True)]}" for k in ms)
                  + r" \\", r"\midrule"]
        for m, cells in _cells(table, ms, decimals, lambda t: rf"\textbf{{{t}}}",
                               lambda t: rf"\underline{{{t}}}", std):
            cells = [c.replace(" ± ", r" $\pm$ ").replace("–", "--") for c in cells]
            parts.append(f"{_tex(m)} & " + " & ".join(cells) + r" \\")
        parts += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(parts)


def to_csv(summary: Summary, metrics) -> str:
    """Long format: set, method, metric, mean, std, n."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["set", "method", "metric", "mean", "std", "n"])
    for s, table in summary.items():
        for m, per in table.items():
            for k in metrics:
                if k in per:
                    mean, sd, n = per[k]
                    w.writerow([s, m, k, repr(mean), repr(sd), n])
    return buf.getvalue()


def to_json(summary: Summary, protocol: dict, failures: list | None = None) -> str:
    return json.dumps({"protocol": protocol, "failures": failures or [], "results": {
        s: {m: {k: {"mean": v[0], "std": v[1], "n": v[2]} for k, v in per.items()}
            for m, per in table.items()} for s, table in summary.items()}}, indent=2)
