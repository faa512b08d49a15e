"""Outputs that do not depend on the thread count: :func:`fixed_order`.

A sum split over threads is added in another order when the thread count changes, and a
floating-point sum depends on its order. torch splits whole-tensor reductions (``x.sum()``)
and BLAS splits long inner products (``A @ B.T`` over all pixels) between its threads; the
global statistics of a pansharpening method (regressions, means, covariances, k-means) are such
sums. One rounding step of difference in a statistic moves a fused pixel across a rounding
boundary now and then: the WorldView-3 test scene fused by BT-H in a process with two BLAS
threads and in one with one differed by 1 DN at 67 of 1.5 million pixels.

Inside :func:`fixed_order`, torch and numpy's BLAS run on one thread, so every sum is added in
one fixed order, whatever ``--threads``, ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, the
machine's load or the Dask worker say. :func:`sumdun.fusion.fuse` runs every classical method
in it, and SUM-DUN its classical start. The guarantee for classical methods: the same inputs,
options, machine and library versions give the same file, bit for bit. The networks are not
run in it: oneDNN's 1 x 1 convolutions add in another order with another thread count (within
1e-5 of the data range), and one order (oneDNN off) cost 2.5x in speed
(``tests/test_reproducible.py`` pins both).
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

__all__ = ["fixed_order"]

_LOCK = threading.RLock()
_DEPTH = [0]
_CONTROLLER: list = []


def _blas_controller():
    """threadpoolctl's view of the BLAS libraries loaded now (cached: a scan of the loaded
    libraries costs milliseconds), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency of the package
        return None
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextlib.contextmanager
def fixed_order() -> Iterator[None]:
    """Run the block with one torch thread and one BLAS thread, then restore both.

    Nested and concurrent uses are safe (the outermost one sets and restores). torch is
    touched only when it is already imported, so numpy-only paths (BT-H on arrays) stay
    torch-free."""
    with _LOCK:
        _DEPTH[0] += 1
        outer = _DEPTH[0] == 1
        torch_threads = None
        blas = None
        if outer:
            torch = sys.modules.get("torch")
            if torch is not None and torch.get_num_threads() != 1:
                torch_threads = torch.get_num_threads()
                torch.set_num_threads(1)
            ctl = _blas_controller()
            if ctl is not None and "numpy" in sys.modules:
                blas = ctl.select(user_api="blas")
                if all(lib.num_threads == 1 for lib in blas.lib_controllers):
                    blas = None
                else:
                    blas = blas.limit(limits=1)
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if outer:
                if blas is not None:
                    blas.restore_original_limits()
                if torch_threads is not None:
                    sys.modules["torch"].set_num_threads(torch_threads)
