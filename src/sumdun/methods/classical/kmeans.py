"""k-means clustering of pixels (the segmentation of the toolbox's C-GSA, ``k_means_clustering.m``).

MATLAB's ``kmeans(F, k)`` defaults: k-means++ seeding, squared Euclidean distance, Lloyd
iterations until no assignment changes (at most 100), an empty cluster is re-seeded with the
point farthest from its centre. MATLAB seeds from its global random stream, so its partition
cannot be reproduced bit for bit; here the seed is explicit and the result deterministic.
Points are columns (``(F, N)``, the layout of a flattened image), processed in chunks.
"""
from __future__ import annotations

import torch

#: points per chunk (bounds the (k, chunk) distance buffer)
CHUNK = 1 << 18


def _assign(x: torch.Tensor, xx: torch.Tensor, centres: torch.Tensor, k_sums: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Nearest centre ``(N,)`` of each point of ``x`` ``(F, N)``, the squared distance to it
    ``(N,)`` (``xx``: the points' squared norms) and, if ``k_sums``, the per-cluster sums of
    the points under the new labels ``(F, k)`` (float64; same pass, while the chunk is in cache)."""
    n = x.shape[1]
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    dist = torch.empty(n, dtype=x.dtype, device=x.device)
    c2 = (centres * centres).sum(1, keepdim=True)
    sums = torch.zeros(x.shape[0], k_sums, dtype=torch.float64, device=x.device) if k_sums else None
    ids = torch.arange(max(k_sums, 1), device=x.device)
    for s in range(0, n, CHUNK):
        part = x[:, s:s + CHUNK]
        d = torch.addmm(c2, centres, part, alpha=-2)                    # (k, n): |c|^2 - 2 c.x
        m, lab = d.min(0)
        dist[s:s + CHUNK], labels[s:s + CHUNK] = m, lab
        if k_sums:
            sums += (part @ (lab[:, None] == ids).to(x.dtype)).to(torch.float64)
    return labels, dist.add_(xx).clamp_(min=0), sums


def kmeans(x: torch.Tensor, k: int, seed: int = 0, max_iter: int = 100) -> torch.Tensor:
    """Cluster the columns of ``x`` ``(F, N)`` into ``k`` groups; returns labels ``(N,)`` in
    ``0..k-1`` (k-means++ seeding from ``seed``, then Lloyd iterations)."""
    n = x.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters from {n} points")
    gen = torch.Generator().manual_seed(int(seed))
    xx = (x * x).sum(0)
    first = int(torch.randint(n, (1,), generator=gen))
    centres = x[:, first].clone()[None]                                 # (k, F)
    _, dist, _ = _assign(x, xx, centres)
    for _ in range(1, k):                                 # k-means++: P(point) ~ D^2
        total = float(dist.sum())
        if total == 0:                                    # fewer distinct points than k
            pick = int(torch.randint(n, (1,), generator=gen))
        else:
            pick = int(torch.multinomial((dist / total).double().cpu(), 1, generator=gen))
        centres = torch.cat([centres, x[:, pick][None]])
        _, d_new, _ = _assign(x, xx, centres[-1:])
        dist = torch.minimum(dist, d_new)
    labels, dist, sums = _assign(x, xx, centres, k)
    for _ in range(max_iter):
        counts = torch.bincount(labels, minlength=k)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = int(dist.argmax())                      # 'singleton': farthest point
            sums[:, empty] = x[:, far].to(torch.float64)
            counts[empty] = 1
            dist[far] = 0
        centres = (sums / counts).T.to(x.dtype).contiguous()
        new_labels, dist, sums = _assign(x, xx, centres, k)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels
