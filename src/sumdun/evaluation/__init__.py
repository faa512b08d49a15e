"""Evaluation like the paper's tables (:func:`evaluate`), ablations (:func:`run_ablations`)
and figures (:func:`comparison_figure`, :func:`spectral_profile_figure`, :func:`figure_for_sample`)."""
from __future__ import annotations

from .figures import comparison_figure, spectral_profile_figure
from .runner import evaluate, method_spec
from .tables import summarise, to_csv, to_json, to_latex, to_markdown

__all__ = ["evaluate", "method_spec", "summarise", "to_markdown", "to_latex", "to_csv",
           "to_json", "comparison_figure", "spectral_profile_figure", "figure_for_sample",
           "run_ablations"]


def figure_for_sample(data, index: int, methods, out, profile_out=None, dpi: int = 100):
    """Fuse sample ``index`` of a PanCollection file with each method and draw the comparison
    (and, when ``profile_out`` is given, the spectral profile). Returns the written paths."""
    import numpy as np

    from ..fusion import fuse
    from ..io import read_h5
    from ..sensors import sensor_for_bands

    d = read_h5(data, index=slice(index, index + 1))
    if not len(d["ms"]):
        raise ValueError(f"{data} has no sample {index}")
    attrs = d["attrs"]
    ms, pan = d["ms"][0].astype(np.float64), d["pan"][0].astype(np.float64)
    sensor = sensor_for_bands(attrs.get("sensor"), ms.shape[0])
    top = float(2 ** int(attrs.get("bits", 11)) - 1)
    fused = {}
    for m in methods:
        label, name, opts = method_spec(m)
        fused[label] = np.clip(np.asarray(fuse(ms, pan, method=name, sensor=sensor,
                                               ratio=int(attrs.get("ratio", 4)), **opts)), 0, top)
    ref = d["gt"][0].astype(np.float64) if "gt" in d else None
    title = f"{attrs.get('sensor', '')} sample {index} of {data}"
    paths = [comparison_figure(fused, sensor.rgb, out, reference=ref, dpi=dpi, title=title)]
    if profile_out:
        names = str(attrs.get("band_names", "")).split(",") if attrs.get("band_names") else None
        paths.append(spectral_profile_figure(fused, profile_out, reference=ref,
                                             band_names=names, dpi=dpi))
    return paths


def run_ablations(*args, **kwargs):
    from .ablation import run_ablations as _run

    return _run(*args, **kwargs)
