"""Adapt SUM-DUN to the scene being fused, without a reference.

Three modes, all on patches sampled from the scene itself (memory bounded by the patch size, not
the scene's):

* ``"rr"``, target-adaptive fine-tuning after Scarpa, Vitale, Cozzolino, "Target-adaptive
  CNN-based pansharpening", TGRS 56(9), 2018 (A-PNN-TA): the pair is degraded once more by
  Wald's protocol (the sensor's MTF and decimation) and the network learns to map the degraded
  pair back to the scene's own MS (L1), then fuses at full scale.
* ``"fr"``: the full-resolution losses of :mod:`sumdun.engine.fr_losses` (Z-PNN) on the pair
  itself.
* ``"both"``: the sum.

Which parameters move (``params``): ``"physics"`` (default) fine-tunes only the parts of SUM-DUN
that model the sensor and the scene's radiometry, about 5.5 k of the small model's 170 k: every
stage's gradient-descent module (the learned degradation kernels D and D^T, the step size eta and
the weight lambda), the learned mix of the two classical starting estimates and the band
weights; the transformer proximal networks and the prompt path stay as trained. ``"all"``
fine-tunes everything (A-PNN-TA's choice). Measured on the leave-one-sensor-out folds
(``benchmarks/adaptation.py``, mode ``"both"``, 30 steps, on top of the shipped detail gain):
``"all"`` lowered Q2n on both held-out sensors (-0.0007 and -0.0032), ``"physics"`` raised it
by less than 0.001, within the noise. On Landsat-8, which no weights saw (PAN without the NIR,
ratio 2, ``grid`` 2), ``"physics"`` in mode ``"both"`` raised reduced-resolution Q2n by 0.028 and
PSNR by 2.5 dB over the shipped fusion, and full-resolution HQNR by 0.006 (4 quadrants of one
scene, every one better).

A copy of the model is adapted; the weights it came from (shipped or a checkpoint) are never
written. Seeded, with a time budget; ``save_checkpoint`` stores the result for other scenes of
the same sensor.
"""
from __future__ import annotations

import copy
import time

import torch

from ..degrade import wald
from .fr_losses import spatial_consistency_loss, spectral_consistency_loss

__all__ = ["adapt", "ADAPT_MODES", "ADAPT_PARAMS"]

ADAPT_MODES = ("rr", "fr", "both")
#: parameter sets (name prefixes in ``SUMDUN.named_parameters()``; None: all) and their
#: default Adam learning rates
ADAPT_PARAMS = {"physics": (("gdms.", "start_gate.", "band_weights."), 3e-3),
                "all": (None, 1e-4)}


def _crops(ms: torch.Tensor, pans: list[torch.Tensor], size: int, q: int,
           ratio: int | list[int], n: int, g: torch.Generator) -> list[torch.Tensor]:
    """``n`` random aligned crops of ``ms`` ``(1, C, h, w)`` (side ``size`` rounded down to a
    multiple of ``q``) and of each tensor of ``pans`` at ``ratio`` times its size (one ratio
    for all, or one per tensor)."""
    ratios = list(ratio) if isinstance(ratio, (list, tuple)) else [ratio] * len(pans)
    h, w = ms.shape[-2:]
    size = min(size, h, w) // q * q
    if size < q:
        raise ValueError(f"the scene ({h} x {w} MS pixels) is smaller than one patch of {q}")
    if size == h and size == w:
        n = 1  # every crop would be the whole scene
    ys = torch.randint(0, h - size + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, w - size + 1, (n,), generator=g).tolist()
    out = [torch.stack([ms[0, :, y:y + size, x:x + size] for y, x in zip(ys, xs)])]
    for p, r in zip(pans, ratios):
        out.append(torch.stack([p[0, :, y * r:(y + size) * r, x * r:(x + size) * r]
                                for y, x in zip(ys, xs)]))
    return out


def adapt(model: torch.nn.Module, ms, pan,
          sensor, steps: int = 30, mode: str = "both", lr: float | None = None,
          batch: int = 4, patch: int = 32, seed: int = 0, time_budget: float | None = None,
          text_embeds: torch.Tensor | None = None, scale: float = 2047.0,
          progress: bool = False, params: str = "physics",
          grid: int = 1) -> tuple[torch.nn.Module, dict]:
    """Fine-tune a copy of ``model`` on one scene; returns ``(adapted copy in eval mode, log)``.

    Args:
        ms, pan: ``(C, h, w)`` / ``(1, r h, r w)`` (or batched with B = 1), digital numbers.
        sensor: the sensor entry (MTF gains for the degradation and the losses).
        steps: optimiser steps (stops earlier when ``time_budget`` seconds are spent).
        mode: ``"rr"`` (Wald-degraded pair, L1 to the MS), ``"fr"`` (spectral + spatial
            consistency at full scale) or ``"both"`` (default).
        lr: Adam's learning rate (default: that of ``params`` in :data:`ADAPT_PARAMS`).
        params: which parameters move, ``"physics"`` (default) or ``"all"``.
        batch: patches per step (1 when one patch covers the scene).
        patch: MS side of the sampled patches (the PAN's is ``ratio`` times larger).
        text_embeds: ``(1, D)`` prompt embedding of the scene, or None.
        scale: the data range the network's inputs divide by.
        grid: 1, or ``k`` when the pair's ratio is the network's divided by ``k`` (a ratio-2
            pair, ratio-4 weights: ``k`` = 2) and ``pan`` is already on the network's grid
            (``methods.neural.sumdun.finer_pan``). The adaptation then sees the pair as the
            fusion does: the finer PAN in, the output decimated back (``finer_grid``), and its
            losses at the pair's own ratio (the reduced pair made from the pair's own PAN).

    Returns:
        The adapted model (every parameter trainable again) and ``{"steps", "seconds",
        "loss_first", "loss_last", "mode", "params", "lr", "grid"}``.
    """
    if mode not in ADAPT_MODES:
        raise ValueError(f"adapt mode must be one of {ADAPT_MODES}, got {mode!r}")
    if params not in ADAPT_PARAMS:
        raise ValueError(f"adapt params must be one of {tuple(ADAPT_PARAMS)}, got {params!r}")
    prefixes, default_lr = ADAPT_PARAMS[params]
    lr = default_lr if lr is None else lr
    if steps < 1:
        raise ValueError(f"adapt steps must be at least 1, got {steps}")
    from ..methods.neural.finer_grid import decimate2, upsample2

    net_ratio = model.cfg.ratio
    if not isinstance(grid, int) or grid < 1 or grid & (grid - 1) or net_ratio % grid:
        raise ValueError(f"grid must be a power of 2 dividing {net_ratio}, got {grid!r}")
    ratio = net_ratio // grid  # the pair's own ratio
    halvings = grid.bit_length() - 1

    def on_pair_grid(out):  # the network's output decimated back, as the fusion does
        for _ in range(halvings):
            out = decimate2(out)
        return out

    q = max(1, max(model.cfg.stage_scales()) // net_ratio)  # MS sides: multiples of this
    dev = next(model.parameters()).device
    ms_t, pan_t = (torch.as_tensor(a).double() for a in (ms, pan))
    ms_t, pan_t = (a if a.ndim == 4 else a[None] for a in (ms_t, pan_t))
    pan_own = pan_t[..., ::grid, ::grid]  # the finer grid keeps the pair's own PAN samples
    if mode in ("rr", "both"):  # the scene one scale down: its MS is the reference
        h, w = (n // ratio * ratio for n in ms_t.shape[-2:])
        ref_ms = ms_t[..., :h, :w]  # on the grid of pan_lr
        ms_lr, pan_lr = wald(ref_ms, pan_own[..., :h * ratio, :w * ratio], sensor, ratio)
        for _ in range(halvings):
            pan_lr = upsample2(pan_lr)  # onto the network's grid
    g = torch.Generator().manual_seed(seed)
    text = None if text_embeds is None else text_embeds.to(dev).float()
    net = copy.deepcopy(model).to(dev).train()
    train = [p for n, p in net.named_parameters() if prefixes is None or n.startswith(prefixes)]
    if not train:
        raise ValueError(f"adapt params={params!r}: the model has no parameter named "
                         f"{' or '.join(prefixes)}...; use params='all'")
    moving = {id(p) for p in train}
    for p in net.parameters():  # frozen parts get no gradient (and cost no optimiser state)
        p.requires_grad_(id(p) in moving)
    opt = torch.optim.Adam(train, lr=lr)
    t0, losses = time.perf_counter(), []
    from tqdm import tqdm

    bar = tqdm(total=steps, desc=f"adapt ({mode})", unit="step", disable=not progress)
    with torch.random.fork_rng(devices=[]):  # prompt dropout draws: seeded, caller's RNG kept
        torch.manual_seed(seed)
        for _ in range(steps):
            loss = torch.zeros((), device=dev)
            if mode in ("rr", "both"):  # input (ms_lr, pan_lr), reference the scene's own MS
                m, p, ref = (a.div(scale).float().to(dev) for a in
                             _crops(ms_lr, [pan_lr, ref_ms], patch, q, [net_ratio, ratio],
                                    batch, g))
                out = on_pair_grid(net(m, p, None if text is None else text.expand(len(m), -1)))
                loss = loss + (out - ref).abs().mean()
            if mode in ("fr", "both"):
                m, p = (a.div(scale).float().to(dev) for a in
                        _crops(ms_t, [pan_t], patch, q, net_ratio, batch, g))
                out = on_pair_grid(net(m, p, None if text is None else text.expand(len(m), -1)))
                p = p[..., ::grid, ::grid]  # the pair's own PAN samples
                loss = loss + spectral_consistency_loss(out, m, sensor, ratio) + \
                    0.1 * spatial_consistency_loss(out, m, p, sensor, ratio)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                break
    bar.close()
    for p in net.parameters():
        p.requires_grad_(True)
    return net.eval(), {"steps": len(losses), "seconds": time.perf_counter() - t0,
                        "loss_first": losses[0], "loss_last": losses[-1], "mode": mode,
                        "params": params, "lr": lr, "grid": grid}
