"""Precompute descriptions and embeddings for every sample of a PanCollection ``.h5``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._deps import require
from ..io.atomic import atomic_path
from . import PromptCache, prompt_for_pair

__all__ = ["precompute_prompts"]


#: the prompts of a dataset described without its metadata (``use_meta=False``)
NOMETA_SUFFIX = ".prompts-nometa.h5"


def precompute_prompts(dataset: str | os.PathLike, describer, encoder, cache_dir=None,
                       out: str | os.PathLike | None = None, sensor=None, ratio: int = 4,
                       progress: bool = True, use_meta: bool = True) -> Path:
    """Describe and embed each sample (``ms``, ``pan``) of ``dataset``.

    Results go through the cache (``cache_dir``, default ``<dataset>.prompt-cache/``), so an
    interrupted run resumes where it stopped and a re-run makes no model call. At the end
    ``out`` (default ``<dataset stem>.prompts.h5``) is written atomically with ``prompts``
    (N strings), ``sources`` (N strings), ``text_embeds`` (N, D) float32 and attributes naming
    the describer and the encoder (name, weights hash, dimension). ``use_meta=False`` describes
    the pairs without the file's metadata (sun, view, GSD), as bare arrays are described at
    fusion, into ``<dataset stem>.prompts-nometa.h5`` by default (``prompt_meta_dropout``).
    """
    h5py = require("h5py")
    from tqdm import tqdm

    dataset = Path(dataset)
    if not dataset.exists():
        raise FileNotFoundError(f"dataset not found: {dataset}")
    cache = PromptCache(cache_dir or dataset.with_suffix(".prompt-cache"))
    out = Path(out) if out else dataset.with_name(
        dataset.stem + (".prompts.h5" if use_meta else NOMETA_SUFFIX))
    with h5py.File(dataset, "r") as f:
        if "ms" not in f or "pan" not in f:
            raise ValueError(f"{dataset} needs 'ms' and 'pan' datasets (PanCollection layout)")
        n = f["ms"].shape[0]
        sensor = sensor or (f.attrs.get("sensor") or None)
        if isinstance(sensor, bytes):
            sensor = sensor.decode()
        from . import prompt_meta

        meta = prompt_meta(f.attrs) if use_meta else None
        texts, sources = [], []
        vectors = np.empty((n, encoder.dim), np.float32)
        for i in tqdm(range(n), desc="prompts", unit="sample", disable=not progress):
            p = prompt_for_pair(f["ms"][i], f["pan"][i], describer, encoder, sensor, ratio, cache,
                                meta)
            texts.append(p.text)
            sources.append(p.source)
            vectors[i] = p.embedding
    str_dt = h5py.string_dtype()
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as g:
            g.create_dataset("prompts", data=np.array(texts, dtype=object), dtype=str_dt)
            g.create_dataset("sources", data=np.array(sources, dtype=object), dtype=str_dt)
            g.create_dataset("text_embeds", data=vectors)
            g.attrs.update({"describer": describer.key(), "encoder": encoder.name,
                            "encoder_weights_sha256": encoder.weights_hash,
                            "dim": encoder.dim, "dataset": str(dataset)})
    return out
