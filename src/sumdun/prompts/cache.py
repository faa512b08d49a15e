"""On-disk cache of descriptions and embeddings, keyed by image content and settings.

Layout under ``root``: ``descriptions/ab/<key>.json`` and ``embeddings/ab/<key>.npy``. A
description's key hashes the MS and PAN bytes (with dtype and shape) and the describer's key
(name, version, model, instruction); an embedding's key adds the encoder's name and weights
hash. Files are written atomically (temporary name, then rename).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path

__all__ = ["PromptCache", "content_hash"]


def content_hash(*arrays) -> str:
    """sha256 over dtype, shape and bytes of each array."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class PromptCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @staticmethod
    def description_key(image_hash: str, describer_key: str) -> str:
        return hashlib.sha256(f"{image_hash}|{describer_key}".encode()).hexdigest()

    @staticmethod
    def embedding_key(description_key: str, encoder_key: str) -> str:
        return hashlib.sha256(f"{description_key}|{encoder_key}".encode()).hexdigest()

    def _path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{ext}"

    def get_description(self, key: str) -> dict | None:
        p = self._path("descriptions", key, ".json")
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except ValueError:
            return None  # a damaged entry is recomputed

    def put_description(self, key: str, record: dict) -> None:
        p = self._path("descriptions", key, ".json")
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p) as tmp:
            tmp.write_text(json.dumps(record, indent=1))

    def get_embedding(self, key: str) -> np.ndarray | None:
        p = self._path("embeddings", key, ".npy")
        if not p.exists():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError):
            return None

    def put_embedding(self, key: str, vector: np.ndarray) -> None:
        p = self._path("embeddings", key, ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(vector, np.float32), allow_pickle=False)
