"""Accept numpy or torch, channel-first, single image or batch; give back the same kind."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Array = Any  # numpy.ndarray | torch.Tensor


@dataclass
class Restore:
    """Remembers how an input came in, so a result can be returned the same way."""

    was_numpy: bool
    was_single: bool

    def __call__(self, t: torch.Tensor) -> Array:
        if self.was_single:
            t = t[0]
        return t.detach().cpu().numpy() if self.was_numpy else t


def as_batch(x: Array, name: str = "image", float_dtype: torch.dtype | None = None
             ) -> tuple[torch.Tensor, Restore]:
    """Return ``x`` as a float tensor ``(B, C, H, W)`` and a function that undoes the wrapping.

    Integer inputs become float64 (or ``float_dtype``); float inputs keep their dtype unless
    ``float_dtype`` is given. NumPy arrays share memory where the dtype allows.
    """
    was_numpy = not isinstance(x, torch.Tensor)
    t = torch.from_numpy(np.ascontiguousarray(x)) if was_numpy else x
    if t.ndim not in (3, 4):
        raise ValueError(f"{name} must be channel-first (C, H, W) or (B, C, H, W), got shape "
                         f"{tuple(t.shape)}")
    single = t.ndim == 3
    if single:
        t = t.unsqueeze(0)
    if float_dtype is not None:
        t = t.to(float_dtype)
    elif not t.is_floating_point():
        t = t.to(torch.float64)
    return t, Restore(was_numpy, single)
