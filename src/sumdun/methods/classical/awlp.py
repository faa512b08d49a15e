"""AWLP (toolbox ``MRA/AWLP.m``; Otazu 2005 / Vivone 2021)."""
from __future__ import annotations

import torch

from ...degrade import imresize
from ..base import register
from ._common import std2, upsample
from .wavelet import starck_murtagh_lowpass


@register("awlp", "Additive wavelet luminance proportional, Starck-Murtagh details (Otazu 2005)")
def awlp(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    ratio_img = lms / (lms.mean(1, keepdim=True) + torch.finfo(torch.float64).eps)
    pan_lr = imresize(imresize(pan, 1.0 / ratio), float(ratio))
    # the toolbox equalises PAN to each band (gain a_k, offset) and takes each band's details;
    # the low-pass is linear with unit DC gain, so details_k = a_k (PAN - LP(PAN)): one low-pass
    gain = std2(lms) / std2(pan_lr)                                          # (B, C, 1, 1)
    details = gain * (pan - starck_murtagh_lowpass(pan, ratio))
    return details * ratio_img + lms
