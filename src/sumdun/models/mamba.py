"""Mamba (Gu and Dao 2023) in pure PyTorch, for CPU and GPU alike.

The selective scan ``h_t = exp(delta_t A) * h_{t-1} + delta_t B_t x_t``, ``y_t = C_t . h_t +
D x_t`` (per channel ``d`` and state ``n``) is a first-order linear recurrence
``h_t = a_t h_{t-1} + b_t``. :func:`selective_scan` solves it in chunks: inside each chunk of
``chunk`` steps a Hillis-Steele scan combines ``(a, b)`` pairs in ``log2(chunk)`` vectorised
passes (every chunk at once), then the chunks' end states are scanned the same way and carried
into each chunk (``h_t = h_t^local + (prod of a up to t) h_start``). Products of ``a <= 1`` never
overflow, unlike the ``exp(cumsum)`` shortcut. :func:`selective_scan_reference` is the
sequential definition the tests compare with.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["selective_scan", "selective_scan_reference", "linear_scan", "Mamba"]


def _hillis_steele(a: torch.Tensor, b: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of ``h_t = a_t h_{t-1} + b_t`` (``h_{-1} = 0``) along ``dim``: returns
    ``(prod_{s<=t} a_s, h_t)``."""
    n = a.shape[dim]
    k = 1
    while k < n:
        a_prev = a.narrow(dim, 0, n - k)
        b_prev = b.narrow(dim, 0, n - k)
        b = torch.cat([b.narrow(dim, 0, k), b.narrow(dim, k, n - k) + a.narrow(dim, k, n - k)
                       * b_prev], dim)
        a = torch.cat([a.narrow(dim, 0, k), a.narrow(dim, k, n - k) * a_prev], dim)
        k *= 2
    return a, b


def linear_scan(a: torch.Tensor, b: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` along dim 1 of ``(B, L, ...)`` tensors, ``h_{-1} = 0``."""
    bsz, length = a.shape[:2]
    rest = a.shape[2:]
    chunk = max(1, min(chunk, length))
    pad = (-length) % chunk
    if pad:  # identity steps: a = 1, b = 0
        a = torch.cat([a, a.new_ones((bsz, pad, *rest))], 1)
        b = torch.cat([b, b.new_zeros((bsz, pad, *rest))], 1)
    nc = a.shape[1] // chunk
    a = a.reshape(bsz, nc, chunk, *rest)
    b = b.reshape(bsz, nc, chunk, *rest)
    a_cum, h_local = _hillis_steele(a, b, 2)              # within each chunk, from zero
    if nc > 1:
        _, h_end = _hillis_steele(a_cum[:, :, -1], h_local[:, :, -1], 1)   # chunk end states
        start = torch.cat([torch.zeros_like(h_end[:, :1]), h_end[:, :-1]], 1)
        h_local = h_local + a_cum * start.unsqueeze(2)
    return h_local.reshape(bsz, nc * chunk, *rest)[:, :length]


def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor | None = None, chunk: int = 32) -> torch.Tensor:
    """Mamba's S6 scan. ``x``, ``delta``: ``(Bt, L, d)``; ``A``: ``(d, n)`` (negative);
    ``B``, ``C``: ``(Bt, L, n)``; ``D``: ``(d,)``. Returns ``y`` ``(Bt, L, d)``."""
    da = torch.exp(delta.unsqueeze(-1) * A)                       # (Bt, L, d, n)
    db = (delta * x).unsqueeze(-1) * B.unsqueeze(2)               # (Bt, L, d, n)
    h = linear_scan(da, db, chunk)
    y = torch.einsum("bldn,bln->bld", h, C)
    return y + x * D if D is not None else y


def selective_scan_reference(x, delta, A, B, C, D=None):
    """The sequential definition, one step at a time (tests only)."""
    bsz, length, d = x.shape
    h = x.new_zeros(bsz, d, A.shape[1])
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, t])[..., None] \
            * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, 1)
    return y + x * D if D is not None else y


class Mamba(nn.Module):
    """A Mamba block on token sequences ``(B, L, dim)``: input projection to ``expand * dim``
    (value and gate), causal depthwise conv (``d_conv`` taps), SiLU, input-dependent ``delta``,
    ``B``, ``C``, the selective scan, gating, output projection. ``bidirectional`` adds the
    scan of the reversed sequence (as vision Mambas do: an image has no causal order)."""

    def __init__(self, dim: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 bidirectional: bool = True, chunk: int = 32):
        super().__init__()
        inner = expand * dim
        self.inner, self.d_state, self.chunk = inner, d_state, chunk
        self.dt_rank = math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():  # softplus(bias) = dt in [1e-3, 0.1] (Mamba's initialisation)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32))
                                  .repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, dim, bias=False)
        self.bidirectional = bidirectional

    def _ssm(self, u: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        """The scan of ``u`` ``(B, L, inner)``; ``delta``, ``B``, ``C`` come from ``u`` itself,
        or from ``select`` (same shape: another modality steering the scan)."""
        length = u.shape[1]
        u = F.silu(self.conv(u.transpose(1, 2))[..., :length].transpose(1, 2))
        dbc = self.x_proj(u if select is None else select)
        dt, b, c = dbc.split([self.dt_rank, self.d_state, self.d_state], -1)
        delta = F.softplus(self.dt_proj(dt))
        return selective_scan(u, delta, -torch.exp(self.A_log), b, c, self.D, self.chunk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, z = self.in_proj(x).chunk(2, -1)
        y = self._ssm(u)
        if self.bidirectional:
            y = y + self._ssm(u.flip(1)).flip(1)
        return self.out_proj(y * F.silu(z))
