"""Looking methods up: ``get_method(name)``, ``list_methods()``, the default, and each method's
options (from its signature). A method's module is imported only when it is asked for."""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import UsageError
from .base import REGISTERED, FusionMethod

__all__ = ["BUILTIN", "list_methods", "get_method", "default_method", "method_options",
           "validate_options"]


#: Where each built-in method lives: its module registers it when imported, so looking up one
#: method imports only its module (``sumdun fuse --method bt-h`` never loads SciPy's optimisers).
BUILTIN = {"exp": "classical.exp", "bt-h": "classical.brovey", "bdsd": "classical.bdsd",
           "bdsd-pc": "classical.bdsd", "gsa": "classical.gsa", "awlp": "classical.awlp",
           "c-gsa": "classical.cgsa", "mtf-glp": "classical.glp",
           "mtf-glp-hpm": "classical.glp", "mtf-glp-fs": "classical.glp",
           "pracs": "classical.pracs", "sumdun": "neural.sumdun",
           **{name: "neural.baselines" for name in ("pnn", "pannet", "fusionnet", "awfln",
                                                     "wfanet", "panmamba", "fusionmamba",
                                                     "tmdiff")}}


def _import(module: str) -> None:
    import importlib

    importlib.import_module(f"sumdun.methods.{module}")


def _load_builtin() -> None:
    for module in sorted(set(BUILTIN.values())):
        _import(module)


def list_methods() -> dict[str, str]:
    """``{name: one-line description}`` of every registered method."""
    _load_builtin()
    return {k: m.description for k, m in sorted(REGISTERED.items())}


def get_method(name: str) -> FusionMethod:
    key = name.lower().replace("_", "-")
    if key not in REGISTERED and key in BUILTIN:
        _import(BUILTIN[key])
    if key not in REGISTERED:
        _load_builtin()
        raise KeyError(f"unknown fusion method {name!r}; available: {', '.join(sorted(REGISTERED))}")
    return REGISTERED[key]


def default_method() -> str:
    """SUM-DUN when its weights ship, else MTF-GLP-HPM: the default of :func:`fuse` and of
    ``sumdun fuse``."""
    from ..weights import available

    return "sumdun" if "sumdun_small" in available() else "mtf-glp-hpm"


_FIXED = ("ms", "pan", "sensor", "ratio")


def method_options(method: str) -> dict[str, inspect.Parameter]:
    """The options a method takes (``name -> inspect.Parameter``, with defaults)."""
    params = inspect.signature(get_method(method).fn).parameters
    return {k: p for k, p in params.items() if k not in _FIXED}


def _kind(p: inspect.Parameter) -> str:
    """The option's type name (``"int | None"``): its annotation, else its default's type."""
    if p.annotation is not inspect.Parameter.empty:
        return p.annotation if isinstance(p.annotation, str) else p.annotation.__name__
    d = p.default
    return "" if d is None or d is inspect.Parameter.empty else type(d).__name__


def validate_options(method: str, options: dict) -> None:
    """Check ``options`` against the method's signature before any work: unknown names, and
    values of the wrong type (an integer option must be positive, or non-negative when its
    default is 0, a seed or a step count that is off by default, or when the method lists it in
    ``zero_ok``).
    Raises :class:`~sumdun.errors.UsageError` naming the option, what it takes and the fix."""
    allowed = method_options(method)
    for key, value in options.items():
        if key not in allowed:
            have = ", ".join(sorted(allowed)) or "none"
            raise UsageError(f"method {method!r} has no option {key!r}; its options: {have}")
        kind = _kind(allowed[key])
        if value is None and ("None" in kind or allowed[key].default is None):
            continue
        base = kind.split("|")[0].strip()
        if base == "int":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise UsageError(f"option {key} of {method!r} must be an integer, got {value!r}")
            least = 0 if allowed[key].default == 0 or key in get_method(method).zero_ok else 1
            if value < least:
                raise UsageError(f"option {key} of {method!r} must be an integer >= {least}, "
                                 f"got {value} (default {allowed[key].default})")
        elif base == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise UsageError(f"option {key} of {method!r} must be a number, got {value!r}")
