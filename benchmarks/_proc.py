"""Helpers shared by the benchmarks that run each case in its own process."""
from __future__ import annotations

from pathlib import Path


def peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM), in MiB. Unlike a child's
    ``ru_maxrss`` seen by its parent, it does not include the parent's pages at fork."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
