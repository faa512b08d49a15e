"""Checkpoints as safetensors + JSON metadata (never pickle).

A checkpoint folder holds ``model.safetensors`` (weights), ``meta.json`` (model name, config,
sensors, bit depths, text encoder, code version, metrics) and, for resumable training,
``state.safetensors`` + ``state.json``: optimizer, scheduler, RNG and sampler state, its tensors
in safetensors and everything else in JSON. A checkpoint is written as a unit (a new folder
renamed into place) and ``meta.json`` holds the sha256 of each tensor file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._files import file_sha256 as _sha256
from ..errors import DataError
from ..io.atomic import remove_stale_parts

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "flatten_state",
           "unflatten_state"]


class CheckpointError(DataError):
    """A checkpoint cannot be used: missing, corrupt, or made for another model."""


def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts, lists, tensors, scalars) into tensors keyed by path and a
    JSON-able skeleton that references them as ``{"__tensor__": path}``."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o, path):
        if isinstance(o, torch.Tensor):
            tensors[path] = o.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(o, dict):
            return {"__dict__": [[walk(k, f"{path}/k{i}"), walk(v, f"{path}/{i}")]
                                 for i, (k, v) in enumerate(o.items())]}
        if isinstance(o, (list, tuple)):
            return {"__list__": [walk(v, f"{path}/{i}") for i, v in enumerate(o)],
                    "tuple": isinstance(o, tuple)}
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        raise TypeError(f"cannot store {type(o).__name__} at {path} in a checkpoint")

    return tensors, walk(obj, prefix or "s")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors)
                    for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            items = [unflatten_state(v, tensors) for v in skeleton["__list__"]]
            return tuple(items) if skeleton.get("tuple") else items
    return skeleton


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module, meta: dict,
                    train_state: dict | None = None) -> Path:
    """Write the checkpoint as a unit: every file goes into a new sibling folder, which then
    replaces ``folder`` by renames, so a crash leaves either the old checkpoint or the new one,
    never a mix. ``meta.json`` records the sha256 of every tensor file (``files``), so a
    checkpoint torn by other means (a partial copy) is detected when loaded."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".part",
                                dir=folder.parent))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        if train_state is not None:
            tensors, skeleton = flatten_state(train_state)
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(skeleton, indent=2))
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
        (tmp / "meta.json").write_text(json.dumps({**meta, "files": files}, indent=2))
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _recover(folder: Path) -> None:
    """A crash between the two renames of :func:`save_checkpoint` leaves only the previous
    checkpoint, under ``.<name>.<pid>.old``: put it back."""
    if folder.exists():
        return
    olds = sorted(folder.parent.glob(f".{folder.name}.*.old"), key=lambda q: q.stat().st_mtime)
    if olds and (olds[-1] / "meta.json").exists():
        os.replace(olds[-1], folder)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.exists():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises several error types
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); the "
                              "checkpoint is corrupt or truncated") from err


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a safetensors file's tensors, from its header alone (no tensor data
    read); a header that cannot be parsed is a :class:`CheckpointError`."""
    from safetensors import safe_open

    if not path.exists():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:  # noqa: BLE001 - safetensors raises several error types
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); the "
                              "checkpoint is corrupt or truncated") from err


def model_from_meta(folder: Path, meta: dict) -> torch.nn.Module:
    """The model ``meta.json`` describes, built only once its shapes match the tensors
    ``model.safetensors`` holds: it is first built on torch's ``meta`` device (no memory), so
    a ``meta.json`` claiming huge sizes is refused in a second instead of allocating them."""
    from ..models import create_model

    try:
        name, config = meta["model_name"], dict(meta["model_config"])
        with torch.device("meta"):
            skeleton = create_model(name, **config)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder / 'meta.json'} does not describe a model this sumdun "
                              f"can build ({err}); use another checkpoint") from err
    stored = tensor_shapes(folder / "model.safetensors")
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    wrong = sorted(k for k in wanted if stored.get(k) != wanted[k])
    if wrong or set(stored) - set(wanted):
        k = (wrong or sorted(set(stored) - set(wanted)))[0]
        raise CheckpointError(
            f"{folder}: meta.json and model.safetensors disagree ({len(wrong)} tensor(s) of "
            f"another shape or missing, e.g. {k}: meta.json implies {wanted.get(k)}, the file "
            f"holds {stored.get(k)}); the checkpoint is corrupt or was edited: use another")
    return create_model(name, **config)


def load_checkpoint(folder: str | os.PathLike, model: torch.nn.Module | None = None,
                    with_state: bool = False, allow_changed: tuple[str, ...] = ()) -> dict:
    """Read a checkpoint: ``{"meta", "weights", "state"?}``; with ``model``, check that its
    configuration matches the checkpoint's (fields the checkpoint predates take their
    defaults; ``allow_changed`` names fields a fine-tuning run may change) and load the
    weights into it."""
    folder = Path(folder)
    _recover(folder)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise CheckpointError(f"no checkpoint at {folder} (meta.json missing)")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise CheckpointError(f"{meta_path} is not valid JSON; the checkpoint is corrupt") \
            from err
    for name, digest in (meta.get("files") or {}).items():
        f = folder / name
        if not f.exists() or _sha256(f) != digest:
            raise CheckpointError(f"checkpoint {folder} is torn or corrupt: {name} "
                                  f"{'is missing' if not f.exists() else 'does not match'} "
                                  "the sha256 in meta.json; use another checkpoint (e.g. "
                                  "best/) or retrain")
    weights = _read_safetensors(folder / "model.safetensors")
    out = {"meta": meta, "weights": weights}
    if model is not None:
        cfg = getattr(model, "cfg", None)
        saved = meta.get("model_config")
        if cfg is not None and saved is not None:
            saved = {**type(cfg)().as_dict(), **saved}          # fields added since: defaults
            now = cfg.as_dict()
            diff = sorted(k for k in set(saved) | set(now)
                          if saved.get(k) != now.get(k) and k not in allow_changed)
        else:
            diff = []
        if diff:
            raise CheckpointError(f"checkpoint {folder} was made for another model "
                                  f"configuration (differs in {', '.join(diff)}); create the "
                                  f"model with create_model({meta.get('model_name')!r}, "
                                  "**meta['model_config']) instead")
        try:
            model.load_state_dict(weights)
        except RuntimeError as err:
            raise CheckpointError(f"weights in {folder} do not fit the model: {err}") from err
    if with_state:
        skeleton_path = folder / "state.json"
        if not skeleton_path.exists():
            raise CheckpointError(f"{folder} has no training state to resume from")
        try:
            skeleton = json.loads(skeleton_path.read_text())
        except ValueError as err:
            raise CheckpointError(f"{skeleton_path} is not valid JSON; the checkpoint is "
                                  "corrupt: resume from another one or start afresh") from err
        out["state"] = unflatten_state(skeleton, _read_safetensors(folder / "state.safetensors"))
    return out
