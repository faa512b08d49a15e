"""Error kinds the command line maps to exit codes (as GDAL and ``rio`` users expect).

* :class:`UsageError` (exit 2): an option, argument or configuration value is invalid; the
  message names the value, what is allowed and the fix. Raised before any work starts.
* :class:`DataError` (exit 1): the input data or the file system cannot be used (a corrupt or
  mismatched file, a full disk); the message names the file and the fix.
"""
from __future__ import annotations

__all__ = ["UsageError", "DataError"]


class UsageError(ValueError):
    """An invalid option, argument or configuration value (exit code 2)."""


class DataError(ValueError):
    """Input data, files or the file system cannot be used (exit code 1)."""
