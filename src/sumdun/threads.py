"""How many CPU threads torch (and BLAS) use.

torch starts one thread per core. When other processes already keep the cores busy, those
threads wait on each other: on a 2-core machine with a load average of 5, Q2n of 1024 x 1024 x 8
took 1.94 s with 2 threads and 0.085 s with 1. So the default is the cores *not busy now*:
``cores - round(1-minute load average)``, at least 1 and at most the cores. ``--threads N`` or
the ``SUMDUN_THREADS`` environment variable override it.
"""
from __future__ import annotations

import os

__all__ = ["default_threads", "set_threads", "chosen_threads"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """``SUMDUN_THREADS`` when set, else the idle cores (at least 1)."""
    env = os.environ.get("SUMDUN_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"SUMDUN_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"SUMDUN_THREADS must be a positive integer, got {env!r}")
        return n
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, cores - round(load)))


_CHOSEN: list[int] = []


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default :func:`default_threads`) in torch, OpenMP/BLAS and GDAL's
    compression; returns it. Before torch is imported this only sets ``OMP_NUM_THREADS`` (torch
    reads it when it loads), so commands that never need torch do not pay for importing it."""
    import sys

    n = n or default_threads()
    _CHOSEN[:] = [n]
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def chosen_threads() -> int:
    """The count :func:`set_threads` chose, else :func:`default_threads`."""
    return _CHOSEN[0] if _CHOSEN else default_threads()
