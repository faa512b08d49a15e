"""SUM-DUN in the fusion registry, with the shipped weights (``sumdun.weights``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..fusion import register

_CACHE: dict = {}


def _pretrained(name: str, device: str):
    key = (name, device)
    if key not in _CACHE:
        from ..weights import load_pretrained

        _CACHE[key] = load_pretrained(name, device)
    return _CACHE[key]


def _prompt(ms, pan, sensor, ratio, meta, prompt):
    """``(B, D)`` embeddings: of ``prompt`` text, of the stats description, or None."""
    enc_meta = meta.get("text_encoder")
    if prompt is None or not enc_meta:
        return None
    from ..prompts import StatsDescriber, get_encoder

    key = ("encoder", enc_meta["name"])
    if key not in _CACHE:  # load (and hash-check) the encoder once, not on every call
        _CACHE[key] = get_encoder(enc_meta["name"])
    enc = _CACHE[key]
    texts = []
    for b in range(ms.shape[0]):
        if prompt == "stats":
            texts.append(StatsDescriber().describe(ms[b].cpu().numpy(), pan[b].cpu().numpy(),
                                                   sensor, ratio))
        else:
            texts.append(str(prompt))
    return torch.from_numpy(enc.encode(texts))


def sumdun(ms, pan, sensor, ratio, weights: str = "sumdun_small", prompt="stats",
           device: str = "cpu", bits: int | None = None):
    model, meta = _pretrained(weights, device)
    scale = float(2 ** (bits or sensor.bits or 11) - 1)
    text = _prompt(ms, pan, sensor, ratio, meta, prompt)
    f = max(model.cfg.stage_scales())
    h, w = ms.shape[-2:]
    ph, pw = (-(ratio * h)) % f, (-(ratio * w)) % f  # pad PAN to a multiple of the coarsest scale
    x, p = ms / scale, pan / scale
    if ph or pw:
        x = F.pad(x, (0, pw // ratio, 0, ph // ratio), mode="replicate")
        p = F.pad(p, (0, pw, 0, ph), mode="replicate")
    with torch.inference_mode():
        out = model(x.float().to(device), p.float().to(device),
                    None if text is None else text.to(device))
    out = out[..., :ratio * h, :ratio * w].double().cpu() * scale
    return out.to(ms.device)


def _register() -> None:
    from ..weights import available

    if "sumdun_small" in available():  # joins the registry once its weights ship
        register("sumdun", "SUM-DUN deep unrolling network, shipped sumdun_small weights "
                 "(prompt='stats' (default), a text, or None; weights= a checkpoint folder)",
                 family="neural")(sumdun)


_register()
