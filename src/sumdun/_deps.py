"""Lazy imports of optional heavy dependencies, with the pip command in the error."""
from __future__ import annotations

import importlib

_EXTRAS = {"rasterio": "geo", "h5py": "hdf5", "dgsamples": "samples"}


def require(module: str):
    """Import ``module`` or raise ImportError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = _EXTRAS.get(module)
        hint = f"pip install 'sumdun[{extra}]'" if extra else f"pip install {module}"
        raise ImportError(f"{module} is needed for this; install it with: {hint}") from err
