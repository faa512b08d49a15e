"""Lazy imports of optional heavy dependencies, with the pip command in the error."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

_EXTRAS = {"rasterio": "geo", "h5py": "hdf5", "dgsamples": "samples", "distributed": "batch",
           "dask": "batch"}


def require(module: str):
    """Import ``module`` or raise ImportError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = _EXTRAS.get(module)
        hint = f"pip install 'sumdun[{extra}]'" if extra else f"pip install {module}"
        raise ImportError(f"{module} is needed for this; install it with: {hint}") from err


def package_dir(module: str, hint: str) -> Path:
    """Folder of an installed package, found without importing it (some data packages run
    code on import); ImportError with ``hint`` (the install command) when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(hint)
    return Path(list(spec.submodule_search_locations)[0])
