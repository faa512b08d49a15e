"""Semantic prompts for SUM-DUN: describe an MS + PAN pair in words, embed the words.

Describers (pair -> text): :class:`StatsDescriber` (offline, from image statistics) and
:class:`MLLMDescriber` (a real multimodal LLM over HTTP). Encoders (texts -> unit vectors):
``bge-small`` (default, offline ONNX), sentence-transformers models, ``hash`` (tests only).
:class:`PromptCache` keeps both on disk so training never calls a model twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .cache import PromptCache, content_hash
from .encoders import BGESmallEncoder, HashEncoder, TextEncoder, get_encoder
from .mllm import DEFAULT_INSTRUCTION, MLLMDescriber, MLLMError
from .stats import STATS_VERSION, SceneStats, StatsDescriber, render, scene_stats

__all__ = ["StatsDescriber", "MLLMDescriber", "MLLMError", "DEFAULT_INSTRUCTION",
           "scene_stats", "render", "SceneStats", "STATS_VERSION", "TextEncoder",
           "BGESmallEncoder", "HashEncoder", "get_encoder", "PromptCache", "content_hash",
           "Prompt", "describe_pair", "prompt_for_pair", "get_describer", "prompt_meta",
           "META_KEYS"]


@dataclass
class Prompt:
    """A description, the describer that wrote it, and (optionally) its embedding."""

    text: str
    source: str
    embedding: np.ndarray | None = None
    cached: bool = False


def get_describer(name: str = "stats", **kwargs):
    """``"stats"`` or ``"mllm"`` (keyword arguments go to :class:`MLLMDescriber`)."""
    if name == "stats":
        return StatsDescriber()
    if name == "mllm":
        return MLLMDescriber(**kwargs)
    raise KeyError(f"unknown describer {name!r}; available: stats, mllm")


#: product metadata a describer may use (``h5`` attributes of that name carry it)
META_KEYS = ("gsd_m", "sun_elevation", "off_nadir")


def prompt_meta(attrs) -> dict:
    """The :data:`META_KEYS` present in a mapping (e.g. an ``.h5`` file's attributes)."""
    out = {}
    for k in META_KEYS:
        v = attrs.get(k) if hasattr(attrs, "get") else None
        if v is not None and np.isfinite(float(v)) and float(v) >= 0:
            out[k] = float(v)
    return out


def _meta_tag(meta: dict | None) -> str:
    return "" if not meta else "|" + ",".join(f"{k}={meta[k]:.4g}" for k in sorted(meta))


def describe_pair(ms, pan, describer, sensor=None, ratio: int = 4,
                  cache: PromptCache | None = None, meta: dict | None = None) -> Prompt:
    """Describe one pair, through the cache when given (a hit makes no HTTP or model call).

    ``meta`` (:data:`META_KEYS`) goes to the describer and into the cache key. A fallback
    description (MLLM failed, ``stats`` used) is cached under the stats key only, so a later
    run with a working server still asks the MLLM.
    """
    ms, pan = np.asarray(ms), np.asarray(pan)
    image_hash = content_hash(ms, pan) if cache is not None else ""
    image_hash += _meta_tag(meta)
    key = PromptCache.description_key(image_hash, describer.key())
    if cache is not None:
        hit = cache.get_description(key)
        if hit is not None:
            return Prompt(hit["text"], hit["source"], cached=True)
    text = describer.describe(ms, pan, sensor, ratio, meta=meta)
    source = getattr(describer, "last_source", None) or describer.key()
    if cache is not None:
        store_key = key if source == describer.key() else PromptCache.description_key(
            image_hash, source)
        cache.put_description(store_key, {"text": text, "source": source,
                                          "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return Prompt(text, source)


def prompt_for_pair(ms, pan, describer, encoder: TextEncoder, sensor=None, ratio: int = 4,
                    cache: PromptCache | None = None, meta: dict | None = None) -> Prompt:
    """Description and embedding ``(D,)`` float32 of one pair, both cached when possible."""
    prompt = describe_pair(ms, pan, describer, sensor, ratio, cache, meta)
    ekey = None
    if cache is not None:
        dkey = PromptCache.description_key(content_hash(np.asarray(ms), np.asarray(pan))
                                           + _meta_tag(meta), prompt.source)
        ekey = PromptCache.embedding_key(dkey, encoder.key())
        vec = cache.get_embedding(ekey)
        if vec is not None:
            prompt.embedding = vec
            return prompt
    prompt.embedding = encoder.encode([prompt.text])[0]
    if cache is not None:
        cache.put_embedding(ekey, prompt.embedding)
    return prompt
