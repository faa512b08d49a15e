"""Error kinds the command line maps to exit codes (as GDAL and ``rio`` users expect).

* :class:`UsageError` (exit 2): an option, argument or configuration value is invalid; the
  message names the value, what is allowed and the fix. Raised before any work starts.
* :class:`DataError` (exit 1): the input data or the file system cannot be used (a corrupt or
  mismatched file, a full disk); the message names the file and the fix.
* :class:`Terminated` (exit 128 + the signal: 143 for SIGTERM, 129 for SIGHUP): the process
  was asked to stop; it unwinds as Ctrl-C does (temporary files removed, old outputs kept).
"""
from __future__ import annotations

__all__ = ["UsageError", "DataError", "Terminated"]


class UsageError(ValueError):
    """An invalid option, argument or configuration value (exit code 2)."""


class DataError(ValueError):
    """Input data, files or the file system cannot be used (exit code 1)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived (what Docker, Kubernetes, systemd, Dask's nanny and a closed
    terminal send). A :class:`KeyboardInterrupt`, so every clean-up that handles Ctrl-C handles
    it too; ``signum`` gives the exit code ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
