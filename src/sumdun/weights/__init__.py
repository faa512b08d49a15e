"""Shipped SUM-DUN weights (safetensors + JSON metadata, inside the package).

``sumdun_small/``: trained on DigitalGlobe's WorldView-2 and WorldView-3 sample scenes (PyPI
package ``dgsamples``; the imagery itself is not redistributed), 8-band data and their B, G, R,
NIR subsets, by ``scripts/train_shipped.sh``; ``meta.json`` records the configuration, sensors,
bit depths, text encoder, code version and validation metrics, ``log.csv`` the training curve.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["weights_dir", "available", "load_pretrained"]

ROOT = Path(__file__).parent


def weights_dir(name: str = "sumdun_small") -> Path:
    return ROOT / name


def available() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "model.safetensors").exists()
                  and (p / "meta.json").exists())


def load_pretrained(name: str = "sumdun_small", device: str = "cpu"):
    """``(model in eval mode, meta)`` for shipped weights ``name`` (see :func:`available`) or
    a checkpoint folder (``runs/.../best``)."""
    from ..engine.checkpoint import CheckpointError, load_checkpoint, model_from_meta

    folder = Path(name) if Path(name).is_dir() else weights_dir(name)
    if not (folder / "meta.json").exists():
        raise FileNotFoundError(f"no shipped weights named {name!r}; available: "
                                f"{', '.join(available()) or 'none'}")
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except ValueError as err:
        raise CheckpointError(f"{folder / 'meta.json'} is not valid JSON; the checkpoint is "
                              "corrupt") from err
    model = model_from_meta(folder, meta)  # shapes checked before any allocation
    load_checkpoint(folder, model)
    return model.to(device).eval(), meta
