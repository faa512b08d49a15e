"""k-means clustering of pixels (the segmentation of the toolbox's C-GSA, ``k_means_clustering.m``).

MATLAB's ``kmeans(F, k)`` defaults: k-means++ seeding, squared Euclidean distance, Lloyd
iterations until no assignment changes (at most 100), an empty cluster is re-seeded with the
point farthest from its centre. MATLAB seeds from its global random stream, so its partition
cannot be reproduced bit for bit; here the seed is explicit and the result deterministic.
"""
from __future__ import annotations

import torch

#: rows per distance computation (bounds the (rows, k) distance buffer)
CHUNK = 1 << 20


def _nearest(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest centre ``(N,)`` and the squared distance to it ``(N,)``."""
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    c2 = (centres * centres).sum(1)
    for s in range(0, x.shape[0], CHUNK):
        part = x[s:s + CHUNK]
        d = (part * part).sum(1, keepdim=True) - 2 * part @ centres.T + c2
        dist[s:s + CHUNK], labels[s:s + CHUNK] = d.clamp_(min=0).min(1)
    return labels, dist


def kmeans(x: torch.Tensor, k: int, seed: int = 0, max_iter: int = 100) -> torch.Tensor:
    """Cluster the rows of ``x`` ``(N, F)`` into ``k`` groups; returns labels ``(N,)`` in
    ``0..k-1`` (k-means++ seeding from ``seed``, then Lloyd iterations)."""
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters from {n} points")
    gen = torch.Generator().manual_seed(int(seed))
    first = int(torch.randint(n, (1,), generator=gen))
    centres = x[first:first + 1].clone()
    _, dist = _nearest(x, centres)
    for _ in range(1, k):                                 # k-means++: P(point) ~ D^2
        total = float(dist.sum())
        if total == 0:                                    # fewer distinct points than k
            pick = int(torch.randint(n, (1,), generator=gen))
        else:
            pick = int(torch.multinomial((dist / total).double().cpu(), 1, generator=gen))
        centres = torch.cat([centres, x[pick:pick + 1]])
        _, d_new = _nearest(x, centres[-1:])
        dist = torch.minimum(dist, d_new)
    labels, dist = _nearest(x, centres)
    for _ in range(max_iter):
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
        sums.index_add_(0, labels, x.to(torch.float64))
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = int(dist.argmax())                      # 'singleton': farthest point
            sums[empty] = x[far].to(torch.float64)
            counts[empty] = 1
            dist[far] = 0
        centres = (sums / counts[:, None]).to(x.dtype)
        new_labels, dist = _nearest(x, centres)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels
