"""How many CPU threads torch (and BLAS) use.

torch starts one thread per core. When other processes already keep the cores busy, those
threads wait on each other: on a 2-core machine with a load average of 5, Q2n of 1024 x 1024 x 8
took 1.94 s with 2 threads and 0.085 s with 1. So the default is the cores *not busy now*:
the cores minus the other processes running at this moment (``procs_running`` of
``/proc/stat``, the median of five looks 5 ms apart; not the load average, which still counts a
job that ended a minute ago), at least 1 and at most the cores. ``--threads N`` or the
``SUMDUN_THREADS`` environment variable override it.
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
    busy = _others_running()
    if busy is None:
        return cores
    return max(1, min(cores, cores - busy))


def _others_running() -> int | None:
    """Processes other than this one running now (Linux), else None."""
    import time

    looks = []
    for _ in range(5):
        try:
            with open("/proc/stat") as f:
                for line in f:
                    if line.startswith("procs_running"):
                        looks.append(int(line.split()[1]) - 1)  # less this process
                        break
        except OSError:
            return None
        time.sleep(0.005)
    return sorted(looks)[len(looks) // 2] if looks else None


_CHOSEN: list[int] = []


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default :func:`default_threads`) in torch, OpenMP and GDAL's
    compression; returns it. Before torch is imported this only sets ``OMP_NUM_THREADS`` (torch
    reads it when it loads), so commands that never need torch do not pay for importing it.

    numpy's own BLAS (OpenBLAS) gets one thread when numpy is not loaded yet and
    ``OPENBLAS_NUM_THREADS`` is not set (``sumdun`` commands call this first): its products in
    sumdun are small (BT-H's banded blocks, a tile at a time), where a second BLAS thread only
    spin-waits against GDAL's compression threads (the WorldView-3 scene through
    ``sumdun fuse --method bt-h``: 3.5 s and 6.6 CPU-s with 2 BLAS threads, 2.4 s and 4.3
    CPU-s with 1)."""
    import sys

    n = n or default_threads()
    _CHOSEN[:] = [n]
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
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
