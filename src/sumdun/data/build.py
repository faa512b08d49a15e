"""Build reduced-resolution training data (PanCollection ``.h5``) from full-resolution scenes.

For each scene the original MS is the reference (GT); Wald's protocol with the sensor's MTF
(:func:`sumdun.degrade.wald`) gives the LRMS and the reduced PAN. Patches (default: LRMS
32 x 32, PAN and GT 128 x 128, as in the paper) are cut with a configurable stride.

Splits are spatially disjoint: the scene's rows are divided into horizontal stripes (train at
the top, then validation, then test, each at least one patch tall) and no patch crosses a
stripe boundary, so no pixel of a validation or test patch is seen in training. Patches that
touch nodata are dropped. The test stripe also yields full-resolution patches (original MS and
PAN, no reference) for no-reference assessment.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..degrade import interp23tap, wald
from ..io import write_h5
from ..io.scene import ScenePair
from ..sensors import get_sensor

__all__ = ["split_rows", "subset4", "build_dataset"]


def split_rows(height: int, patch: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the train / val / test stripes of a scene ``height``
    pixels tall (the units of ``patch``); val and test are at least one patch tall."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    test = max(patch, int(round(height * fractions[2]))) if fractions[2] > 0 else 0
    val = max(patch, int(round(height * fractions[1]))) if fractions[1] > 0 else 0
    train = height - val - test
    if train < patch:
        raise ValueError(f"a scene {height} px tall cannot hold train, val and test stripes of "
                         f"at least {patch} px; use smaller patches or give it no val/test")
    return {"train": (0, train), "val": (train, train + val), "test": (train + val, height)}


def subset4(pair: ScenePair) -> ScenePair:
    """The B, G, R, NIR bands of an 8-band pair, as a 4-band "sensor" (``<key>-4band``)."""
    s = pair.sensor
    if s.n_bands != 8:
        raise ValueError(f"{s.name} has {s.n_bands} bands; the 4-band subset needs 8")
    idx = list(s.subset4)
    return replace(pair, ms=pair.ms[idx], band_names=tuple(pair.band_names[i] for i in idx),
                   meta={**pair.meta, "subset": "B,G,R,NIR"})


def pan_gsd_m(pair: ScenePair) -> float | None:
    """PAN pixel size in metres: ``meta["gsd_m"]``, else the geotransform of a projected CRS."""
    if pair.meta.get("gsd_m"):
        return float(pair.meta["gsd_m"])
    crs = pair.crs
    if crs is not None and pair.pan_transform is not None and getattr(crs, "is_projected", False):
        return abs(float(pair.pan_transform.a))
    return None


def _patches(arrays: dict, valid: np.ndarray, rows: tuple[int, int], size: int, stride: int,
             ratio_of: dict) -> dict:
    """Cut aligned patches. ``arrays``: name -> (C, H_k, W_k) on grids ``ratio_of[name]``
    times the grid of ``valid`` (reference grid, patch ``size``)."""
    r0, r1 = rows
    w = valid.shape[1]
    out = {k: [] for k in arrays}
    for y in range(r0, r1 - size + 1, stride):
        for x in range(0, w - size + 1, stride):
            if not valid[y:y + size, x:x + size].all():
                continue
            for k, a in arrays.items():
                f = ratio_of[k]
                ys, xs, s = int(y * f), int(x * f), int(size * f)
                out[k].append(a[:, ys:ys + s, xs:xs + s])
    return {k: np.stack(v) if v else np.zeros((0,) + arrays[k].shape[:1]) for k, v in out.items()}


def build_dataset(pairs: list[ScenePair], out_dir: str | os.PathLike, patch: int = 128,
                  stride: int = 32, fractions=(0.8, 0.1, 0.1), subsets: bool = True,
                  dtype: str = "float32", progress: bool = False,
                  names: list[str] | None = None) -> dict:
    """Write ``<name>_{train,val,test}.h5`` (reduced resolution: ``gt``, ``ms``, ``lms``,
    ``pan``) and ``<name>_test_fr.h5`` (full resolution: ``ms``, ``lms``, ``pan``) for every
    scene (and its 4-band subset when ``subsets``), plus ``manifest.json``.

    Args:
        pairs: full-resolution scenes (e.g. :func:`sumdun.io.load_sample`).
        patch: GT/PAN patch size at reduced resolution (LRMS = patch / ratio).
        stride: patch stride (on the GT grid).
        fractions: train / val / test shares of the scene's rows (``(1, 0, 0)``: all of a
            small scene to training).
        names: dataset name of each pair (default its sensor key: one scene per sensor);
            the 4-band subset adds ``-4band``.

    Returns:
        The manifest: per dataset name, its files and patch counts.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    todo = []
    if names is not None and len(names) != len(pairs):
        raise ValueError(f"names: {len(names)} for {len(pairs)} pairs")
    for k, p in enumerate(pairs):
        name = names[k] if names else p.sensor.key
        todo.append((name, p))
        if subsets and p.sensor.n_bands == 8 and p.ms.shape[0] == 8:
            todo.append((f"{name}-4band", subset4(p)))
    from tqdm import tqdm

    for name, p in tqdm(todo, desc="build-dataset", unit="set", disable=not progress):
        r = p.ratio
        if patch % r:
            raise ValueError(f"patch {patch} must be a multiple of the ratio {r}")
        h, w = (s // r * r for s in p.ms.shape[1:])
        gt = p.ms[:, :h, :w].astype(np.float64)
        pan = p.pan[:, :h * r, :w * r].astype(np.float64)
        valid = p.ms_valid[:h, :w] & p.pan_valid[:h * r, :w * r].reshape(h, r, w, r).all((1, 3))
        ms_lr, pan_lr = wald(gt, pan, get_sensor(p.sensor), r)
        rows = split_rows(h, patch, fractions)
        files, counts = {}, {}
        attrs = {"sensor": p.sensor.key, "bits": p.sensor.bits or 0, "ratio": r,
                 "band_names": ",".join(p.band_names), "source": str(p.meta.get("sample", "")),
                 "protocol": "Wald, toolbox MTF, resize_images.m"}
        # metadata for the prompts (sumdun.prompts.META_KEYS): reduced resolution is r x coarser
        gsd = pan_gsd_m(p)
        attrs.update({k: float(p.meta[k]) for k in ("sun_elevation", "off_nadir")
                      if p.meta.get(k) is not None})
        for split, rr in rows.items():
            if rr[1] - rr[0] < patch:
                continue
            pt = _patches({"gt": gt, "ms": ms_lr, "pan": pan_lr}, valid, rr, patch, stride,
                          {"gt": 1, "ms": 1 / r, "pan": 1})
            if len(pt["gt"]) == 0:
                continue
            pt["lms"] = interp23tap(pt["ms"], r)
            arrays = {k: pt[k].astype(dtype) for k in ("gt", "ms", "lms", "pan")}
            f = write_h5(out / f"{name}_{split}.h5", arrays,
                         attrs={**attrs, "split": split, "rows": f"{rr[0]}:{rr[1]}",
                                **({"gsd_m": gsd * r} if gsd else {})})
            files[split], counts[split] = f.name, len(arrays["gt"])
        # full resolution test patches: original MS (patch / r) and PAN (patch)
        t0, t1 = rows["test"]
        fr = {"ms": []}  # none when the scene went wholly to training
        if t1 - t0 >= patch:
            fr = _patches({"ms": gt, "pan": pan}, valid, (t0, t1), patch // r, patch // r,
                          {"ms": 1, "pan": r})
        if len(fr["ms"]):
            fr["lms"] = interp23tap(fr["ms"], r)
            f = write_h5(out / f"{name}_test_fr.h5", {k: fr[k].astype(dtype) for k in fr},
                         attrs={**attrs, "split": "test_fr", "rows": f"{t0}:{t1}",
                                **({"gsd_m": gsd} if gsd else {})})
            files["test_fr"], counts["test_fr"] = f.name, len(fr["ms"])
        manifest[name] = {"files": files, "patches": counts, "rows": rows, "sensor": p.sensor.key,
                          "bands": int(p.ms.shape[0])}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
