"""SUM-DUN in the fusion registry, with the shipped weights (``sumdun.weights``)."""
from __future__ import annotations

import copy
import dataclasses
import math
import warnings

import torch
import torch.nn.functional as F

from ..base import register
from .detail_gain import MIN_MS, apply_detail_gain, estimate_detail_gain, reduced_pair
from .finer_grid import check_ratio, decimate2, upsample2

_CACHE: dict = {}


def _pretrained(name: str, device: str):
    key = (name, device)
    if key not in _CACHE:
        from ...weights import load_pretrained

        _CACHE[key] = load_pretrained(name, device)
    return _CACHE[key]


def _prompt(ms, pan, sensor, ratio, meta, prompt, scale: float, prompt_meta=None):
    """``(B, D)`` embeddings: of ``prompt`` text, of the stats description, or None. The stats
    describer sees the data on the sensor's nominal range (``ms / scale * sensor max``), so the
    same scene at another bit depth gets the same description."""
    enc_meta = meta.get("text_encoder")
    if prompt is None or not enc_meta:
        return None
    from ...prompts import StatsDescriber, get_encoder

    key = ("encoder", enc_meta["name"])
    if key not in _CACHE:  # load (and hash-check) the encoder once, not on every call
        _CACHE[key] = get_encoder(enc_meta["name"])
    enc = _CACHE[key]
    texts = []
    nominal = (sensor.max_value or scale) / scale
    for b in range(ms.shape[0]):
        if prompt == "stats":
            texts.append(StatsDescriber().describe((ms[b] * nominal).cpu().numpy(),
                                                   (pan[b] * nominal).cpu().numpy(),
                                                   sensor, ratio, meta=prompt_meta))
        else:
            texts.append(str(prompt))
    return torch.from_numpy(enc.encode(texts))


def data_scale(ms, pan, sensor, bits: int | None = None,
               data_range: float | None = None) -> float:
    """The value the network's input divides by: ``data_range`` (e.g. 1.0 for reflectance),
    else ``2**bits - 1``, else the sensor's (11 bits when unknown). Warns when the data exceed
    it, the sign of a wrong bit depth (the result would be wrong, not just rescaled)."""
    if data_range is not None:
        if not (isinstance(data_range, (int, float)) and math.isfinite(data_range)
                and data_range > 0):
            raise ValueError(f"data_range must be a positive number, got {data_range!r}")
        scale = float(data_range)
    else:
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)
                                 or not 1 <= bits <= 32):
            raise ValueError(f"bits must be an integer from 1 to 32, got {bits!r}")
        scale = float(2 ** (bits or sensor.bits or 11) - 1)
    top = max(float(ms.max()), float(pan.max()))
    if top > scale * 1.001:
        warnings.warn(f"the data reach {top:g}, above the data range {scale:g} "
                      f"({'data_range' if data_range else f'{bits or sensor.bits or 11} bits'}); "
                      "pass the right bits= or data_range= (e.g. 1.0 for reflectance)",
                      stacklevel=3)
    return scale


def prepare(ms, pan, sensor, ratio, weights: str = "sumdun_small", prompt="stats",
            device: str = "cpu", bits: int | None = None, data_range: float | None = None,
            prompt_meta: dict | None = None, adapt: int = 0, adapt_mode: str = "both",
            adapt_seed: int = 0, adapt_seconds: float | None = None,
            save_adapted: str | None = None, progress: bool = False, note: dict | None = None,
            consistency: int | None = None, detail_gain: float | None = None,
            adapt_params: str = "physics", grid: int = 1):
    """``(model, text embedding or None, input scale)`` for a pair ``(B, C, h, w)``, ``(B, 1,
    rh, rw)``: the weights (with ``consistency`` back-projection steps and ``detail_gain``
    instead of their own when given), adapted to the pair first when ``adapt`` steps are asked
    (:mod:`sumdun.engine.adapt`, on a copy; ``grid`` = k when ``pan`` is already on the
    network's grid, k times finer than the pair's, :func:`grid_factor`) and then saved to
    ``save_adapted`` with ``note`` in their metadata."""
    model, meta = _pretrained(weights, device)
    model = with_fusion_options(model, consistency=consistency, detail_gain=detail_gain)
    scale = data_scale(ms, pan, sensor, bits, data_range)
    text = _prompt(ms, pan, sensor, ratio, meta, prompt, scale, prompt_meta)
    if adapt:
        from ...engine.adapt import adapt as adapt_model

        if ms.shape[0] != 1:
            raise ValueError("adapt= fuses one scene at a time (batch size 1)")
        model, log = adapt_model(model, ms, pan, sensor, steps=adapt, mode=adapt_mode,
                                 seed=adapt_seed, time_budget=adapt_seconds,
                                 text_embeds=text, scale=scale, progress=progress,
                                 params=adapt_params, grid=grid)
        if save_adapted:
            from ...engine.checkpoint import save_checkpoint

            save_checkpoint(save_adapted, model, {**meta, "adapted": {
                **log, "from": str(weights), "sensor": sensor.key, "seed": adapt_seed,
                **(note or {})}})
    return model, text, scale


def with_fusion_options(model, **values):
    """``model``, or a twin sharing its parameters whose config takes the given fusion options
    (``consistency``, ``detail_gain``; None keeps the weights' own); the cached model is never
    changed."""
    values = {k: v for k, v in values.items() if v is not None and v != getattr(model.cfg, k)}
    if not values:
        return model
    twin = copy.copy(model)
    twin.cfg = dataclasses.replace(model.cfg, **values).validate()
    return twin


def grid_factor(ratio: int, weights: str = "sumdun_small", device: str = "cpu") -> int:
    """``k``: the network fuses a ratio-``ratio`` pair on a grid ``k`` times finer (1, or 2 for
    a ratio-2 pair and ratio-4 weights); a ratio it cannot fuse is a clear error."""
    return check_ratio(ratio, _pretrained(weights, device)[0].cfg.ratio)


def finer_pan(pan: torch.Tensor, k: int) -> torch.Tensor:
    """The PAN ``(B, 1, H, W)`` interpolated onto the network's grid ``(B, 1, kH, kW)``
    (half-band filter, its own samples kept; ``k`` from :func:`grid_factor`)."""
    for _ in range(k.bit_length() - 1):
        pan = upsample2(pan)
    return pan


def sumdun(ms, pan, sensor, ratio, weights: str = "sumdun_small", prompt="stats",
           device: str = "cpu", bits: int | None = None, data_range: float | None = None,
           prompt_meta: dict | None = None, adapt: int = 0, adapt_mode: str = "both",
           adapt_seed: int = 0, adapt_seconds: float | None = None,
           save_adapted: str | None = None, consistency: int | None = None,
           detail_gain: float | None = None, adapt_params: str = "physics"):
    # a pair of a ratio dividing the network's (ratio 2 for ratio-4 weights) is fused on a
    # finer grid: the PAN interpolated k times, the output decimated back (finer_grid.py)
    k = grid_factor(ratio, weights, device)
    pan = finer_pan(pan, k)
    ratio *= k  # the pair the network (and its prompt) sees from here on
    model, text, scale = prepare(ms, pan, sensor, ratio, weights, prompt, device, bits,
                                 data_range, prompt_meta, adapt, adapt_mode, adapt_seed,
                                 adapt_seconds, save_adapted, consistency=consistency,
                                 detail_gain=detail_gain, adapt_params=adapt_params, grid=k)
    multiple = max(model.cfg.stage_scales())
    out = run_network(model, ms, pan, text, scale, ratio, device, multiple)
    share = model.cfg.detail_gain
    if share and min(ms.shape[-2:]) >= MIN_MS:
        ms_c, ms_rr, pan_rr = reduced_pair(ms, pan, ratio)
        fused_rr = run_network(model, ms_rr, pan_rr, text, scale, ratio, device, multiple)
        out = apply_detail_gain(out, estimate_detail_gain(fused_rr, ms_c, share, ratio), ratio)
    for _ in range(k.bit_length() - 1):
        out = decimate2(out)
    return out


def run_network(model, ms, pan, text, scale: float, ratio: int, device: str,
                multiple: int) -> torch.Tensor:
    """The network's fusion of ``(B, C, h, w)``, ``(B, 1, rh, rw)`` on the input's scale: inputs
    divided by ``scale``, the PAN padded (replicate) to a multiple of ``multiple``, float32 on
    ``device``, cropped back and multiplied by ``scale``, float64 on the input's device."""
    h, w = ms.shape[-2:]
    ph, pw = (-(ratio * h)) % multiple, (-(ratio * w)) % multiple
    x, p = ms / scale, pan / scale
    if ph or pw:
        # MS padded by whole MS pixels covering the PAN padding
        x = F.pad(x, (0, -(-pw // ratio), 0, -(-ph // ratio)), mode="replicate")
        p = F.pad(p, (0, -(-pw // ratio) * ratio, 0, -(-ph // ratio) * ratio), mode="replicate")
    with torch.inference_mode():
        out = model(x.float().to(device), p.float().to(device),
                    None if text is None else text.to(device))
    out = out[..., :ratio * h, :ratio * w].double().cpu() * scale
    return out.to(ms.device)


def _register() -> None:
    from ...weights import available

    if "sumdun_small" in available():  # joins the registry once its weights ship
        register("sumdun", "SUM-DUN deep unrolling network, shipped sumdun_small weights "
                 "(prompt='stats' (default), a text, or None; weights= a checkpoint folder; bits= or "
                 "data_range= when the data are not on the sensor's bit depth; consistency= "
                 "back-projection steps at the output and detail_gain= (0 to 1) the share of "
                 "the per-band detail gain calibrated at the reduced scale, default the "
                 "weights' own, 0 none)",
                 family="neural", zero_ok=("consistency",))(sumdun)


_register()
