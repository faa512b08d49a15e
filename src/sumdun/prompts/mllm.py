"""The ``mllm`` describer: a real multimodal LLM behind an HTTP API.

Two protocols: OpenAI-compatible chat completions (``POST {base_url}/chat/completions`` with
``image_url`` parts holding ``data:image/png;base64,...`` URLs; served by Ollama at ``/v1``,
vLLM, llama.cpp server, LM Studio) and Ollama's native ``POST {base_url}/api/chat`` (base64
images in ``messages[].images``). The request carries the instruction and two PNGs: a stretched
true-colour (or false-colour) composite of the MS and the stretched PAN.

The API key is read from the environment variable named by ``api_key_env`` at call time and
sent as a Bearer token; it is never stored, printed or logged. Connection failures, timeouts,
HTTP 429 and 5xx are retried with exponential backoff; other HTTP errors and malformed replies
are not. When every try fails, :class:`MLLMError` is raised, or with ``fallback="stats"`` the
offline ``stats`` description is returned instead (``last_source`` says which).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings

import numpy as np

from ..sensors import sensor_for_bands
from ..viz import png_bytes, stretch
from .stats import StatsDescriber

__all__ = ["DEFAULT_INSTRUCTION", "MLLMError", "MLLMDescriber"]

DEFAULT_INSTRUCTION = (
    "The first image is a low-resolution multispectral composite and the second the "
    "high-resolution panchromatic image of the same area, from an Earth observation "
    "satellite. In two or three sentences, describe in general terms: the scene type; the "
    "main objects and land cover; the texture and edge complexity; the spectral character "
    "(colours, vegetation, water); and any haze, shadows or noise. Do not mention the images "
    "or the sensor themselves."
)


class MLLMError(RuntimeError):
    """The MLLM server did not give a usable description."""


#: an answer longer than this many words is not the short description asked for
MAX_WORDS = 120
#: an on-topic answer names at least one of these (scene content, texture, conditions)
TOPIC_WORDS = frozenset("""
    urban city town suburb suburban residential industrial commercial rural agricultural farm
    farmland field fields crop crops cropland orchard vineyard pasture grass grassland meadow
    forest forests wood woods woodland tree trees shrub shrubs vegetation vegetated green
    park parks garden water river rivers lake lakes sea ocean coast coastal harbour harbor port
    canal pond wetland beach sand desert bare soil rock rocky mountain mountains hill hills
    snow ice glacier cloud clouds cloudy haze hazy smoke shadow shadows building buildings
    house houses roof roofs road roads street streets highway parking airport runway bridge
    railway dense sparse texture textured edges edge pattern patterns landscape terrain
    land scene area region settlement village neighbourhood neighborhood block blocks
""".split())
_REFUSAL = ("i'm sorry", "i am sorry", "i cannot", "i can't", "as an ai", "unable to",
            "i do not have", "i don't have", "cannot assist", "can't help")


def answer_problem(text: str) -> str | None:
    """Why an MLLM answer is not a usable scene description (None when it is): empty, too
    long (over :data:`MAX_WORDS` words), a refusal, or off-topic (no word of
    :data:`TOPIC_WORDS`)."""
    words = text.split()
    if not words:
        return "the answer is empty"
    if len(words) > MAX_WORDS:
        return f"the answer is too long ({len(words)} words, at most {MAX_WORDS})"
    low = text.lower()
    if any(r in low for r in _REFUSAL):
        return "the model refused or could not see the images"
    if not {w.strip(".,;:!?()\"'").lower() for w in words} & TOPIC_WORDS:
        return "the answer is off-topic (no land cover, structure or condition named)"
    return None


def _downscale(img: np.ndarray, max_side: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(img.shape[-2:]) / max_side)))
    return img[..., ::step, ::step]


def _fetch(req, timeout: float) -> bytes:
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def _bounded(fn, timeout: float):
    """``fn()`` with ``timeout`` seconds for the whole call, not per socket read (a server that
    trickles one byte a second never trips a per-read timeout). The request runs in a daemon
    thread that is abandoned, not joined, when the time is up."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    worker = threading.Thread(target=run, daemon=True, name="sumdun-mllm-request")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no complete answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class MLLMDescriber:
    """Describe an MS + PAN pair with a multimodal LLM over HTTP.

    Args:
        base_url: server root: ``http://HOST:PORT/v1`` for the OpenAI protocol,
            ``http://HOST:PORT`` for Ollama's native one.
        model: model name on the server.
        api: ``"openai"`` or ``"ollama"``.
        api_key_env: environment variable holding the API key (optional).
        timeout: seconds per HTTP request.
        retries: extra tries after a retryable failure; backoff doubles from ``backoff`` s.
        total_timeout: seconds for one description, all tries and waits together (each
            request gets what is left, at most ``timeout``); None (default): no bound beyond
            theirs. ``sumdun fuse --mllm-timeout`` sets it, 20 s by default, so an
            interactive fusion ends within 30 s when the server is dead or hangs (three
            requests of 60 s took 187 s before).
        instruction: the text prompt (default modelled on the paper's).
        composite: ``"true"`` (R, G, B) or ``"false"`` (NIR, R, G) colour for the MS image.
        max_side: images are decimated to at most this many pixels per side.
        fallback: ``None`` (raise :class:`MLLMError`) or ``"stats"``.
    """

    name = "mllm"
    version = "mllm-1"

    def __init__(self, base_url: str = "http://127.0.0.1:11434/v1", model: str = "qwen2.5vl",
                 api: str = "openai", api_key_env: str = "SUMDUN_MLLM_API_KEY",
                 timeout: float = 60.0, retries: int = 2, backoff: float = 1.0,
                 total_timeout: float | None = None, instruction: str = DEFAULT_INSTRUCTION, composite: str = "true",
                 max_side: int = 512, temperature: float = 0.0, max_tokens: int = 200,
                 fallback: str | None = None):
        if api not in ("openai", "ollama"):
            raise ValueError(f"api must be 'openai' or 'ollama', got {api!r}")
        if composite not in ("true", "false"):
            raise ValueError(f"composite must be 'true' or 'false', got {composite!r}")
        if fallback not in (None, "stats"):
            raise ValueError(f"fallback must be None or 'stats', got {fallback!r}")
        self.base_url = base_url.rstrip("/")
        self.model, self.api, self.api_key_env = model, api, api_key_env
        for name, value in (("timeout", timeout), ("total_timeout", total_timeout)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.total_timeout = total_timeout
        self.instruction, self.composite, self.max_side = instruction, composite, max_side
        self.temperature, self.max_tokens, self.fallback = temperature, max_tokens, fallback
        self.last_source = None

    def __repr__(self) -> str:  # no key material, ever
        return (f"MLLMDescriber(base_url={self.base_url!r}, model={self.model!r}, "
                f"api={self.api!r})")

    def key(self) -> str:
        ins = hashlib.sha256(self.instruction.encode()).hexdigest()[:16]
        return f"{self.name}:{self.version}:{self.api}:{self.model}:{self.composite}:{ins}"

    # -- request -------------------------------------------------------------------------
    def images(self, ms: np.ndarray, pan: np.ndarray, sensor=None) -> tuple[bytes, bytes]:
        """The two PNGs sent to the model: MS composite and PAN, stretched to 8 bit."""
        s = sensor_for_bands(sensor, ms.shape[0])
        idx = list(s.rgb) if self.composite == "true" else [s.nir, s.rgb[0], s.rgb[1]]
        if ms.shape[0] == 4 and s.n_bands == 8:  # 4-band subset: B, G, R, NIR
            idx = [2, 1, 0] if self.composite == "true" else [3, 2, 1]
        ms_rgb, _ = stretch(_downscale(np.asarray(ms, float)[idx], self.max_side))
        pan_g, _ = stretch(_downscale(np.asarray(pan, float), self.max_side))
        return png_bytes(ms_rgb), png_bytes(pan_g[..., 0])

    def request(self, ms_png: bytes, pan_png: bytes) -> tuple[str, dict]:
        """``(url, json body)`` of the HTTP request."""
        b64 = [base64.b64encode(b).decode("ascii") for b in (ms_png, pan_png)]
        if self.api == "openai":
            content = [{"type": "text", "text": self.instruction}] + [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b}"}}
                for b in b64]
            body = {"model": self.model, "messages": [{"role": "user", "content": content}],
                    "temperature": self.temperature, "max_tokens": self.max_tokens,
                    "stream": False}
            return f"{self.base_url}/chat/completions", body
        body = {"model": self.model, "stream": False,
                "messages": [{"role": "user", "content": self.instruction, "images": b64}],
                "options": {"temperature": self.temperature, "num_predict": self.max_tokens}}
        return f"{self.base_url}/api/chat", body

    def _post(self, url: str, body: dict, timeout: float | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
        timeout = self.timeout if timeout is None else timeout
        raw = _bounded(lambda: _fetch(req, timeout), timeout)
        try:
            return json.loads(raw)
        except ValueError as err:
            raise MLLMError(f"the server at {url} replied with something that is not JSON") \
                from err

    def _text(self, reply: dict) -> str:
        try:
            if self.api == "openai":
                text = reply["choices"][0]["message"]["content"]
            else:
                text = reply["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise MLLMError(f"malformed reply from the MLLM server (no message content): "
                            f"keys {sorted(reply) if isinstance(reply, dict) else type(reply)}") \
                from err
        if not isinstance(text, str):
            raise MLLMError("malformed reply from the MLLM server (content is not text)")
        return " ".join(text.split())

    def describe(self, ms, pan, sensor=None, ratio: int = 4, meta: dict | None = None) -> str:
        url, body = self.request(*self.images(np.asarray(ms), np.asarray(pan), sensor))
        error: Exception | None = None
        start = time.monotonic()

        def left() -> float:
            if self.total_timeout is None:
                return float("inf")
            return self.total_timeout - (time.monotonic() - start)

        for attempt in range(self.retries + 1):
            if attempt:
                if left() <= self.backoff * 2 ** (attempt - 1):
                    error = MLLMError(f"{error}; no time left for another try within the "
                                      f"total timeout of {self.total_timeout:g} s "
                                      "(--mllm-timeout)")
                    break
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                text = self._text(self._post(url, body, min(self.timeout, left())))
                problem = answer_problem(text)
                if problem is not None:  # a reply, but not a description: no retry
                    return self._stats_instead(f"MLLM {self.model} at {url}: {problem}", ms,
                                               pan, sensor, ratio, meta)
                self.last_source = self.key()
                return text
            except urllib.error.HTTPError as err:
                error = MLLMError(f"HTTP {err.code} from {url}")
                if err.code != 429 and err.code < 500:
                    break
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                error = MLLMError(f"no answer from {url} ({reason}); is the server running?")
            except MLLMError as err:
                error = err
                break
        if self.fallback == "stats":
            return self._stats_instead(str(error), ms, pan, sensor, ratio, meta)
        raise error

    def _stats_instead(self, why: str, ms, pan, sensor, ratio, meta) -> str:
        """The offline stats description, with a warning saying why, recorded as its source."""
        warnings.warn(f"{why}; using the offline stats describer instead", RuntimeWarning,
                      stacklevel=3)
        stats = StatsDescriber()
        self.last_source = stats.key()
        return stats.describe(ms, pan, sensor, ratio, meta=meta)
