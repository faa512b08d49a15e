"""SUM-DUN, the deep baselines, and their registry (timm style): ``create_model(name,
**overrides)``.

Baselines (one file each, :mod:`._baseline` for what they share): ``pnn``, ``pannet``,
``fusionnet``, ``awfln``, ``wfanet``, ``panmamba``, ``fusionmamba``, ``tmdiff``; each takes
``bands=`` (one set of weights per band count, as upstream) and its config's fields."""
from __future__ import annotations

import importlib
from typing import Callable

import torch.nn as nn

from .sumdun import SUMDUN, SUMDUNConfig

__all__ = ["SUMDUN", "SUMDUNConfig", "create_model", "list_models", "register_model",
           "ABLATIONS", "BASELINES"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., SUMDUN]) -> Callable[..., SUMDUN]:
    _MODELS[fn.__name__] = fn
    return fn


def _create_sumdun(defaults: dict, overrides: dict) -> SUMDUN:
    cfg = dict(defaults)
    cfg.update({k: v for k, v in overrides.items() if v is not None})  # None = keep default
    return SUMDUN(SUMDUNConfig(**cfg))


@register_model
def sumdun_tiny(**overrides) -> SUMDUN:
    """For tests: 3 stages at scales (4, 8, 4), width 4."""
    return _create_sumdun(dict(stages=3, scales=(4, 8, 4), dim=4, text_hidden=16, kernel=9),
                          overrides)


@register_model
def sumdun_small(**overrides) -> SUMDUN:
    """The CPU default: 5 stages at scales (4, 8, 16, 8, 4), widths (12, 24, 48, 24, 12);
    PAN sides must be multiples of 16."""
    return _create_sumdun(dict(stages=5, scales=(4, 8, 16, 8, 4), dim=12, text_hidden=64),
                          overrides)


@register_model
def sumdun_base(**overrides) -> SUMDUN:
    """Paper scale, for GPUs: 5 stages at (1, 2, 4, 2, 1), widths (24, 48, 96, 48, 24), 2 blocks."""
    return _create_sumdun(dict(stages=5, scales=(1, 2, 4, 2, 1), dim=24, blocks=2, heads=2,
                               text_hidden=128), overrides)


#: baseline name -> (module, model class, config class), imported when created
BASELINES = {"pnn": ("pnn", "PNN", "PNNConfig"), "pannet": ("pannet", "PanNet", "PanNetConfig"),
             "fusionnet": ("fusionnet", "FusionNet", "FusionNetConfig"),
             "awfln": ("awfln", "AWFLN", "AWFLNConfig"), "wfanet": ("wfanet", "WFANet",
                                                                  "WFANetConfig"),
             "panmamba": ("panmamba", "PanMamba", "PanMambaConfig"),
             "fusionmamba": ("fusionmamba", "FusionMamba", "FusionMambaConfig"),
             "tmdiff": ("tmdiff", "TMDiff", "TMDiffConfig")}


def _baseline_factory(name: str) -> Callable[..., nn.Module]:
    module, model_cls, cfg_cls = BASELINES[name]

    def create(**overrides) -> nn.Module:
        mod = importlib.import_module(f"{__name__}.{module}")
        cfg_type = getattr(mod, cfg_cls)
        unknown = set(overrides) - set(cfg_type.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{name} has no setting {sorted(unknown)}; its settings: "
                             f"{sorted(cfg_type.__dataclass_fields__)}")
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()
               if v is not None}
        return getattr(mod, model_cls)(cfg_type(**cfg))

    create.__name__ = name
    create.__doc__ = f"{model_cls} (sumdun.models.{module})"
    return create


for _name in BASELINES:
    _MODELS[_name] = _baseline_factory(_name)


def create_model(name: str, **overrides) -> nn.Module:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name](**overrides)


def list_models() -> list[str]:
    return sorted(_MODELS)


#: The paper's ablations (tables 4 and 5) as overrides of one configuration.
ABLATIONS: dict[str, dict] = {
    "T4-I (2D op, 2D prox, multi-scale)": dict(degradation="2d", prox="2d", multiscale=True),
    "T4-II (3D op, 2D prox, multi-scale)": dict(degradation="3d", prox="2d", multiscale=True),
    "T4-III (3D op, 3D prox, multi-scale)": dict(degradation="3d", prox="3d", multiscale=True),
    "T4-IV (3D op, 3D prox, single scale)": dict(degradation="3d", prox="3d", multiscale=False),
    "T5-I channel": dict(spim="channel"),
    "T5-II spatial": dict(spim="spatial"),
    "T5-III spatial-channel": dict(spim="spatial-channel"),
    "T5-IV cross-attention": dict(spim="cross-attention"),
    "no SPIM": dict(spim="none"),
}
