"""The deep baselines of :mod:`sumdun.models` in the fusion registry, each registered once its
weights ship (``sumdun/weights/<name>_<bands>b``, made by ``scripts/train_baselines.sh``).

Upstream trains one network per band count; so do these: ``fuse(..., method="pnn")`` picks the
weights for the MS's band count (``weights=`` overrides with a checkpoint folder) and says
which band counts have weights when this one has none. Inputs are scaled as for SUM-DUN
(:func:`~sumdun.methods.neural.sumdun.data_scale`); TMDiff also takes SUM-DUN's prompts.
"""
from __future__ import annotations

from ...errors import UsageError
from ..base import register
from .sumdun import _pretrained, _prompt, data_scale, run_network

__all__ = ["BASELINE_METHODS", "weights_for", "shipped_band_counts"]

#: registry name (= model name in :data:`sumdun.models.BASELINES`) -> description
BASELINE_METHODS = {
    "pnn": "PNN (Masi 2016): three convolutions on the expanded MS and the PAN",
    "pannet": "PanNet (Yang 2017): ResNet on high-pass inputs, added to the expanded MS",
    "fusionnet": "FusionNet (Deng 2021): ResNet detail injection from PAN minus expanded MS",
    "awfln": "AWFLN (Lu 2023): adaptive weighted feature learning, learned injection gains",
    "wfanet": "WFANet (Huang 2025): Haar-wavelet multi-frequency cross attention",
    "panmamba": "Pan-Mamba (He 2025): channel-swapping and cross-modal Mamba",
    "fusionmamba": "FusionMamba (Xie 2024): two-branch U-shaped Mamba with cross-modal fusion",
    "tmdiff": "TMDiff (Xing 2024): text-modulated diffusion of the residual, 4-step DDIM "
              "(reduced width)",
}


def shipped_band_counts(name: str) -> list[int]:
    """Band counts with shipped weights for baseline ``name`` (e.g. ``[4, 8]``)."""
    from ...weights import available

    return sorted(int(w[len(name) + 1:-1]) for w in available()
                  if w.startswith(f"{name}_") and w.endswith("b") and w[len(name) + 1:-1].isdigit())


def weights_for(name: str, bands: int, weights: str | None = None) -> str:
    """The weights network ``name`` fuses ``bands`` bands with: ``weights`` when given, else
    the shipped ones (``sumdun_small`` for SUM-DUN, any band count; ``<name>_<bands>b`` for a
    baseline); a :class:`UsageError` naming the shipped band counts when a baseline has none
    for ``bands``."""
    if weights:
        return weights
    if name == "sumdun":
        return "sumdun_small"
    have = shipped_band_counts(name)
    if bands not in have:
        raise UsageError(f"{name} ships weights for {', '.join(map(str, have))}-band MS, not "
                         f"{bands} bands (one network per band count, as upstream): select "
                         "bands with --bands, pass weights= a checkpoint for this band count, "
                         "or use sumdun (any band count)")
    return f"{name}_{bands}b"


def _fuse(name, ms, pan, sensor, ratio, weights, device, bits, data_range, prompt=None,
          prompt_meta=None):
    model, meta = _pretrained(weights_for(name, ms.shape[1], weights), device)
    scale = data_scale(ms, pan, sensor, bits, data_range)
    text = _prompt(ms, pan, sensor, ratio, meta, prompt, scale, prompt_meta)
    return run_network(model, ms, pan, text, scale, ratio, device, model.multiple)


def _make(name: str, with_text: bool):
    """The registry function of baseline ``name``; its signature is its options, so a
    network that reads no prompt has no ``prompt`` option."""
    def fuse_without_text(ms, pan, sensor, ratio, weights: str | None = None,
                          device: str = "cpu", bits: int | None = None,
                          data_range: float | None = None):
        return _fuse(name, ms, pan, sensor, ratio, weights, device, bits, data_range)

    def fuse_with_text(ms, pan, sensor, ratio, weights: str | None = None, prompt="stats",
                       device: str = "cpu", bits: int | None = None,
                       data_range: float | None = None, prompt_meta: dict | None = None):
        return _fuse(name, ms, pan, sensor, ratio, weights, device, bits, data_range, prompt,
                     prompt_meta)

    fn = fuse_with_text if with_text else fuse_without_text
    fn.__name__ = name.replace("-", "_")
    return fn


def _register() -> None:
    for name, description in BASELINE_METHODS.items():
        bands = shipped_band_counts(name)
        if bands:
            register(name, f"{description}; weights for {'/'.join(map(str, bands))} bands",
                     family="neural")(_make(name, with_text=name == "tmdiff"))


_register()
