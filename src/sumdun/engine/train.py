"""Unified multi-sensor training of SUM-DUN: ``fit(TrainConfig)`` and ``sumdun train``.

Each batch holds one dataset (one band count); datasets are drawn by size or by configured
weights. Loss: ``l1_weight`` x L1 on the [0, 1]-scaled HRMS, plus optionally
``q2n_weight * (1 - Q2n)`` and the full-resolution losses of :mod:`sumdun.engine.fr_losses`
(``spectral_weight``, ``spatial_weight``), which need no reference: with ``l1_weight: 0`` and
no Q2n term, training files need only ``ms`` and ``pan`` (e.g. ``*_test_fr.h5``, a user's
archive). AdamW,
linear warm-up then cosine decay, gradient clipping, validation each epoch (Q2n, PSNR, SAM,
ERGAS per dataset, on digital numbers), best and last checkpoints (safetensors + JSON), a CSV
log, and exact resume: the sampler's order is a function of (seed, epoch), and the optimizer,
scheduler and RNG states are saved with it.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from .._deps import require
from ..errors import UsageError
from ..metrics import ergas, psnr, q2n, sam
from ..metrics.reduced import q2n_map
from ..models import create_model
from ..prompts.dataset import NOMETA_SUFFIX
from ..sensors import get_sensor
from .augment import band_augment, mtf_augment, pan_augment, radiometric_augment
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .fr_losses import spatial_consistency_loss, spectral_consistency_loss

__all__ = ["TrainConfig", "PatchSet", "MixedBatches", "fit", "load_config"]


@dataclass
class TrainConfig:
    model: str = "sumdun_small"
    model_overrides: dict = field(default_factory=dict)
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    out_dir: str = "runs/sumdun"
    prompts: bool = True          # read <data>.prompts.h5 beside each file when present
    batch_size: int = 8
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    clip: float = 1.0
    balance_weight: float = 0.01  # weight of SPIM's routing balance loss (0: off)
    q2n_weight: float = 0.0       # weight of the (1 - Q2n) loss per patch, 32 x 32 blocks (0: off)
    l1_weight: float = 1.0        # weight of the L1 loss against gt (0: files need no gt)
    spectral_weight: float = 0.0  # full-resolution spectral consistency (engine/fr_losses.py)
    spatial_weight: float = 0.0   # full-resolution spatial (local correlation with the PAN)
    radiometric_aug: float = 0.0  # share of samples given another product's radiometry
    #                               (per-band gains/offsets, 8-bit quantisation): engine/augment.py
    band_aug: float = 0.0         # share of batches given a random subset (3..C) and order of
    #                               their bands: engine/augment.py
    mtf_aug: float = 0.0          # share of samples whose MS is made again from the reference
    #                               with MTF gains of other sensors (0.2-0.4): engine/augment.py
    pan_aug: float = 0.0          # share of samples whose PAN is partly replaced by another
    #                               spectral response (a random mix of the bands): augment.py
    prompt_meta_dropout: float = 0.0  # share of samples whose prompt describes the pair without
    #                               its metadata (sun, view, GSD; <data>.prompts-nometa.h5), as
    #                               bare arrays are described at fusion
    init: str | None = None       # start from these weights (checkpoint folder or shipped name)
    seed: int = 0
    sampling: object = "size"     # "size" or {dataset name: weight}
    device: str = "auto"
    amp: bool = True              # mixed precision on CUDA only
    checkpoint_every: int = 0     # also save "last" every N steps (0: at epoch ends only)
    tensorboard: bool = False
    progress: bool = True


def load_config(path: str | os.PathLike) -> TrainConfig:
    """A :class:`TrainConfig` from YAML; relative paths (data, out_dir, an ``init`` checkpoint
    folder) are taken from the file's folder."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config not found: {p}")
    try:
        from .._yaml import load_yaml

        raw = load_yaml(p.read_text(), str(p)) or {}
    except yaml.YAMLError as err:
        raise UsageError(f"{p} is not valid YAML ({str(err).splitlines()[0]}); fix the line "
                         "it names") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{p} must be a YAML mapping of TrainConfig settings (model: ..., "
                         f"train: [...]), got a {type(raw).__name__}")
    unknown = set(raw) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise UsageError(f"{p}: unknown settings {sorted(unknown)}; valid: "
                         f"{sorted(TrainConfig.__dataclass_fields__)}")
    for key in ("train", "val"):
        if isinstance(raw.get(key), str):  # one file
            raw[key] = [raw[key]]
        if not isinstance(raw.get(key, []), list):
            raise UsageError(f"{p}: {key} must be a list of .h5 files, got {raw[key]!r}")
        raw[key] = [str((p.parent / f).resolve()) if not Path(f).is_absolute() else f
                    for f in raw.get(key, [])]
    if "out_dir" in raw and not Path(raw["out_dir"]).is_absolute():
        raw["out_dir"] = str((p.parent / raw["out_dir"]).resolve())
    init = raw.get("init")
    if init and ("/" in init or os.sep in init) and not Path(init).is_absolute():
        raw["init"] = str((p.parent / init).resolve())   # a checkpoint folder, not a shipped name
    return TrainConfig(**_typed(raw, p))


def _typed(raw: dict, source) -> dict:
    """Config values coerced to their field's type (YAML reads ``1e-3`` as a string); a value
    that is not of that type is a :class:`UsageError` naming the setting and what it takes."""
    out = dict(raw)
    for key, value in raw.items():
        kind = TrainConfig.__dataclass_fields__[key].type
        kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        if value is None and "None" in kind:
            continue
        base = kind.split("|")[0].strip()
        try:
            if base == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                out[key] = int(float(value)) if isinstance(value, str) else int(value)
                if isinstance(value, str) and float(value) != out[key]:
                    raise ValueError
            elif base == "float":
                if isinstance(value, bool):
                    raise ValueError
                out[key] = float(value)
                if not math.isfinite(out[key]):
                    raise ValueError
            elif base == "bool":
                if not isinstance(value, bool):
                    raise ValueError
            elif base in ("list",):
                if not isinstance(value, list):
                    raise ValueError
            elif base == "dict":
                if not isinstance(value, dict):
                    raise ValueError
            elif base == "str":
                if not isinstance(value, str):
                    raise ValueError
        except (TypeError, ValueError):
            want = {"int": "an integer", "float": "a number", "bool": "true or false",
                    "list": "a list", "dict": "a mapping", "str": "a text"}.get(base, base)
            raise UsageError(f"{source}: {key}: {value!r} is not {want}; e.g. "
                             f"{key}: {getattr(TrainConfig(), key)!r}") from None
    for key in ("epochs", "batch_size"):
        if key in out and out[key] < 1:
            raise UsageError(f"{source}: {key} must be at least 1, got {out[key]}")
    for key in ("lr", "weight_decay", "clip", "balance_weight", "q2n_weight", "l1_weight",
                "spectral_weight", "spatial_weight"):
        if key in out and out[key] < 0:
            raise UsageError(f"{source}: {key} must not be negative, got {out[key]}")
    for key in ("radiometric_aug", "band_aug", "mtf_aug", "pan_aug", "prompt_meta_dropout"):
        if key in out and not 0 <= out[key] <= 1:
            raise UsageError(f"{source}: {key} is a share of samples from 0 to 1, got "
                             f"{out[key]}")
    return out


class PatchSet:
    """A PanCollection file in memory, scaled to [0, 1] by the sensor's bit depth (``gt`` may be
    absent when ``needs_gt`` is False: full-resolution pairs without a reference)."""

    def __init__(self, path: str | os.PathLike, prompts: bool = True, needs_gt: bool = True):
        h5py = require("h5py")
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"training data not found: {self.path}")
        with h5py.File(self.path, "r") as f:
            missing = ({"gt", "ms", "pan"} if needs_gt else {"ms", "pan"}) - set(f)
            if missing:
                raise ValueError(f"{self.path} lacks {sorted(missing)} (PanCollection layout)")
            attrs = dict(f.attrs)
            bits = int(attrs.get("bits", 0)) or (get_sensor(attrs["sensor"]).bits
                                                 if "sensor" in attrs else 11)
            self.scale = float(2 ** bits - 1)
            self.gt = torch.from_numpy(f["gt"][()]).float() / self.scale if "gt" in f else None
            self.ms = torch.from_numpy(f["ms"][()]).float() / self.scale
            self.pan = torch.from_numpy(f["pan"][()]).float() / self.scale
        self.sensor = str(attrs.get("sensor", "generic"))
        self.bits = bits
        self.name = self.path.stem.replace("_train", "").replace("_val", "").replace("_test", "")
        self.text = None
        self.encoder = None
        side = self.path.with_name(self.path.stem + ".prompts.h5")
        if prompts and side.exists():
            with h5py.File(side, "r") as g:
                self.text = torch.from_numpy(g["text_embeds"][()]).float()
                self.encoder = {"name": str(g.attrs.get("encoder")),
                                "sha256": str(g.attrs.get("encoder_weights_sha256")),
                                "dim": int(g.attrs.get("dim"))}
            if len(self.text) != len(self):
                raise ValueError(f"{side} has {len(self.text)} embeddings for {len(self)} "
                                 "samples; recompute it with sumdun prompts")
        self.text_nometa = None  # the same pairs described without their metadata
        side = self.path.with_name(self.path.stem + NOMETA_SUFFIX)
        if self.text is not None and side.exists():
            with h5py.File(side, "r") as g:
                self.text_nometa = torch.from_numpy(g["text_embeds"][()]).float()
            if self.text_nometa.shape != self.text.shape:
                raise ValueError(f"{side} has {len(self.text_nometa)} embeddings for "
                                 f"{len(self)} samples; recompute it")

    def __len__(self) -> int:
        return len(self.ms)

    def batch(self, idx: torch.Tensor, nometa: torch.Tensor | None = None):
        """``(ms, pan, gt, text)`` of samples ``idx``; ``nometa`` (bool, one per sample) takes
        those samples' prompts described without metadata."""
        text = None if self.text is None else self.text[idx]
        if text is not None and nometa is not None and nometa.any():
            text = torch.where(nometa[:, None], self.text_nometa[idx], text)
        return self.ms[idx], self.pan[idx], None if self.gt is None else self.gt[idx], text


class MixedBatches:
    """The batch order of an epoch: a pure function of ``(seed, epoch)``, so a resumed run
    replays it exactly. Each batch comes from one dataset."""

    def __init__(self, sizes: list[int], batch_size: int, seed: int, weights=None):
        self.sizes, self.batch_size, self.seed = sizes, batch_size, seed
        self.weights = weights

    def plan(self, epoch: int) -> list[tuple[int, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        per = []
        for n in self.sizes:
            perm = torch.randperm(n, generator=g)
            per.append([perm[i:i + self.batch_size] for i in range(0, n, self.batch_size)])
        counts = [len(b) for b in per]
        if self.weights is not None:
            total = sum(counts)
            w = torch.tensor(self.weights, dtype=torch.float64)
            counts = [max(1, int(round(total * float(x) / float(w.sum())))) for x in w]
        slots = torch.cat([torch.full((c,), d) for d, c in enumerate(counts)])
        slots = slots[torch.randperm(len(slots), generator=g)]
        used = [0] * len(per)
        out = []
        for d in slots.tolist():
            out.append((d, per[d][used[d] % len(per[d])]))
            used[d] += 1
        return out


def _hardware(device: torch.device) -> str:
    """Where training ran, for the budget in a checkpoint's metadata."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()}-thread CPU ({os.cpu_count()} cores)"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; joins the process group when started by ``torchrun``
    (``WORLD_SIZE`` > 1): NCCL on CUDA (one GPU per ``LOCAL_RANK``), gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _init_folder(init: str) -> Path:
    """The checkpoint folder of ``init``: a folder path, or the name of shipped weights."""
    from ..weights import available, weights_dir

    if Path(init).is_dir():
        return Path(init)
    if "/" in init or os.sep in init or not weights_dir(init).is_dir():
        raise FileNotFoundError(f"init {init!r}: no such checkpoint folder or shipped weights "
                                f"(shipped: {available()}); run the training it names first")
    return weights_dir(init)


def q2n_loss(out: torch.Tensor, gt: torch.Tensor, block: int = 32) -> torch.Tensor:
    """``sum over patches of (1 - Q2n(out, gt))``, differentiable, for ``(B, C, H, W)`` batches
    on any scale (Q2n without the uint16 cast; H, W multiples of ``block``). Q2n rewards
    what L1 does not see: per-block correlation, contrast and mean of all bands jointly."""
    q = q2n_map(out.double(), gt.double(), block, block, quantize=False)
    return (1.0 - q.flatten(1).mean(1)).sum().float()


def _global_mean(loss: torch.Tensor, world: int) -> float:
    """The global batch's mean L1 from each rank's share (all-reduced on several ranks)."""
    if world > 1:
        import torch.distributed as dist

        loss = loss.clone()
        dist.all_reduce(loss)
        return float(loss) / world
    return float(loss)


def _rank_share(n: int, rank: int, world: int) -> tuple[torch.Tensor, bool]:
    """Positions of this rank's share of a global batch of ``n`` (contiguous chunks), and
    whether they count: a rank left without samples gets position 0 with zero weight, so
    that every rank takes part in the backward pass."""
    mine = torch.tensor_split(torch.arange(n), world)[rank]
    return (mine, True) if len(mine) else (torch.zeros(1, dtype=torch.long), False)


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


@torch.no_grad()
def evaluate_sets(model, sets: list[PatchSet], device, batch_size: int = 8) -> dict:
    """Mean Q2n, PSNR, SAM, ERGAS per dataset, on digital numbers."""
    model.eval()
    out = {}
    for s in sets:
        fused = []
        for i in range(0, len(s), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(s)))
            ms, pan, _, text = s.batch(idx)
            fused.append(model(ms.to(device), pan.to(device),
                               None if text is None else text.to(device)).float().cpu())
        f = torch.cat(fused).clamp(0, 1) * s.scale
        g = s.gt * s.scale
        f, g = f.double(), g.double()
        out[s.name] = {"Q2n": float(q2n(f, g).mean()), "PSNR": float(psnr(f, g, s.scale).mean()),
                       "SAM": float(sam(f, g).mean()), "ERGAS": float(ergas(f, g).mean())}
    model.train()
    return out


def fit(cfg: TrainConfig, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train; returns ``{"history": [...], "best": folder, "last": folder}``.

    ``resume`` continues from ``<out_dir>/last``; ``stop_after`` ends this call after that many
    epochs (a run split over several calls, e.g. to fit a time limit, ends where one call would).
    """
    from tqdm import tqdm

    init = _init_folder(cfg.init) if cfg.init and not resume else None
    if not cfg.train:
        raise ValueError("no training data: set train: [<file>_train.h5, ...]")
    torch.manual_seed(cfg.seed)
    rank, world, device = _distributed(_device(cfg.device))
    main = rank == 0
    if not (cfg.l1_weight or cfg.q2n_weight or cfg.spectral_weight or cfg.spatial_weight):
        raise UsageError("every loss weight is 0: set l1_weight, q2n_weight, spectral_weight "
                         "or spatial_weight")
    train_sets = [PatchSet(p, cfg.prompts, needs_gt=bool(cfg.l1_weight or cfg.q2n_weight))
                  for p in cfg.train]
    val_sets = [PatchSet(p, cfg.prompts) for p in cfg.val]
    if cfg.prompt_meta_dropout:
        lacking = [str(s.path) for s in train_sets if s.text is not None and s.text_nometa is None]
        if lacking:
            raise UsageError(f"prompt_meta_dropout needs the prompts described without metadata "
                             f"beside {lacking[0]} (and {len(lacking) - 1} more): make them with "
                             "sumdun.prompts.dataset.precompute_prompts(..., use_meta=False)")
    encoders = {json.dumps(s.encoder, sort_keys=True) for s in train_sets if s.encoder}
    if len(encoders) > 1:
        raise ValueError("the training files' prompts come from different text encoders; "
                         "recompute them with one encoder")
    encoder = json.loads(encoders.pop()) if encoders else None
    overrides = dict(cfg.model_overrides)
    if encoder:
        overrides.setdefault("text_dim", encoder["dim"])
    model = create_model(cfg.model, **overrides).to(device)
    if init:  # fine-tuning: weights only, a fresh optimiser and schedule
        load_checkpoint(init, model, allow_changed=tuple(cfg.model_overrides))
    own_loss = hasattr(model, "training_loss")
    if own_loss and (cfg.q2n_weight or cfg.spectral_weight or cfg.spatial_weight
                     or not cfg.l1_weight):
        raise UsageError(f"{cfg.model} trains with its own loss (training_loss): set l1_weight "
                         "> 0 (its weight) and q2n_weight, spectral_weight, spatial_weight to 0")
    if own_loss and world > 1:  # DDP synchronises gradients through forward() only
        raise UsageError(f"{cfg.model} trains with its own loss (training_loss), which does not "
                         "go through DistributedDataParallel: train it in one process")
    net = model
    if world > 1:  # gradients averaged over ranks during backward
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    weights = None
    if isinstance(cfg.sampling, dict):
        weights = [float(cfg.sampling.get(s.name, 0.0)) for s in train_sets]
    sampler = MixedBatches([len(s) for s in train_sets], cfg.batch_size, cfg.seed, weights)
    steps_per_epoch = len(sampler.plan(0))
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.warmup_steps, total))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epoch, start, step, best, history = 0, 0, 0, -math.inf, []
    if resume:
        try:
            ck = load_checkpoint(out_dir / "last", model, with_state=True)
        except CheckpointError as err:
            raise CheckpointError(f"cannot resume: {err}") from err
        st = ck["state"]
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["rng"])
        epoch, start, step = st["epoch"], st["index"], st["step"]
        best, history = st["best"], json.loads(st["history"])
    meta_base = {"model_name": cfg.model, "model_config": model.cfg.as_dict(),
                 "sensors": sorted({s.sensor for s in train_sets}),
                 "bits": {s.name: s.bits for s in train_sets},
                 "text_encoder": encoder, "code_version": __version__,
                 "train_config": asdict(cfg)}
    writer = None
    if cfg.tensorboard and main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out_dir / "tb"))
    log_path = out_dir / "log.csv"

    def state(ep, idx):
        return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": torch.get_rng_state(), "epoch": ep, "index": idx, "step": step,
                "best": best, "history": json.dumps(history)}

    model.train()
    bar = tqdm(total=total, initial=step, desc="train", unit="step",
               disable=not (cfg.progress and main))
    drop_p = model.cfg.prompt_dropout if model.uses_text else 0.0
    last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, epoch + stop_after)
    while epoch < last_epoch:
        plan = sampler.plan(epoch)
        losses = []
        t0 = time.time()
        for i in range(start, len(plan)):
            d, idx = plan[i]
            # drawn for the global batch on every rank: the same stream as one process
            drop = torch.rand(len(idx)) < drop_p if drop_p > 0 else None
            pos, real = _rank_share(len(idx), rank, world)
            nometa = None
            if cfg.prompt_meta_dropout:  # drawn per (seed, epoch, step) for the global batch
                g_meta = torch.Generator().manual_seed(cfg.seed * 7_000_003 + epoch * 100_003 + i)
                nometa = (torch.rand(len(idx), generator=g_meta) < cfg.prompt_meta_dropout)[pos]
            ms, pan, gt, text = (None if t is None else t.to(device)
                                 for t in train_sets[d].batch(idx[pos], nometa))
            if cfg.radiometric_aug or cfg.band_aug or cfg.mtf_aug or cfg.pan_aug:  # drawn per
                # (seed, epoch, step): resumes exactly; the sensor first, then the product
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 100_003 + i)
                ms = mtf_augment(ms, gt, cfg.mtf_aug, gen)
                pan = pan_augment(pan, gt, cfg.pan_aug, gen)
                ms, pan, gt = radiometric_augment(ms, pan, gt, cfg.radiometric_aug, gen)
                ms, gt = band_augment(ms, gt, cfg.band_aug, gen)  # exactly, on every rank
            if drop is not None:
                drop = drop[pos]
            with torch.autocast(device.type, enabled=use_amp):
                # sum over this rank / elements of the global batch, x world (DDP averages):
                # the gradient of the global batch's mean L1 on any number of ranks
                share = world * len(pos) / len(idx) * (1.0 if real else 0.0)  # of a rank's mean
                if own_loss:  # a diffusion model's denoising loss instead of L1 on a fusion
                    l1_part = share * model.training_loss(ms, pan, gt, text, drop)
                    loss, l1_part = cfg.l1_weight * l1_part, l1_part.detach()
                    out = None  # no fused image: the other loss terms are refused above
                else:
                    out = net(ms, pan, text, prompt_drop=drop)
                    if gt is not None:
                        n_global = gt[0].numel() * len(idx)
                        loss = (out - gt).abs().sum() * (world / n_global) * \
                            (1.0 if real else 0.0)
                        l1_part = loss.detach()
                        loss = cfg.l1_weight * loss
                    else:
                        loss = l1_part = torch.zeros((), device=out.device)
                sensor = train_sets[d].sensor
                if cfg.spectral_weight:  # full resolution: no reference needed
                    loss = loss + cfg.spectral_weight * share * spectral_consistency_loss(
                        out.float(), ms.float(), sensor, model.cfg.ratio)
                if cfg.spatial_weight:
                    loss = loss + cfg.spatial_weight * share * spatial_consistency_loss(
                        out.float(), ms.float(), pan.float(), sensor, model.cfg.ratio)
                if cfg.q2n_weight and gt is not None:
                    loss = loss + cfg.q2n_weight * q2n_loss(out, gt) * (world / len(idx)) * \
                        (1.0 if real else 0.0)
                if cfg.balance_weight:  # per rank on several ranks (equal in expectation)
                    loss = loss + cfg.balance_weight * model.routing_balance_loss()
            opt.zero_grad(set_to_none=True)
            if scaler:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            scaler.step(opt) if scaler else opt.step()
            if scaler:
                scaler.update()
            sched.step()
            step += 1
            losses.append(_global_mean(l1_part, world))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", epoch=epoch)
            if writer:
                writer.add_scalar("train/l1", losses[-1], step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and main:
                save_checkpoint(out_dir / "last", model, meta_base, state(epoch, i + 1))
        metrics = evaluate_sets(model, val_sets, device) if val_sets and main else {}
        score = float(np.mean([m["Q2n"] for m in metrics.values()])) if metrics else \
            -float(np.mean(losses)) if losses else -math.inf
        row = {"epoch": epoch, "step": step, "train_l1": float(np.mean(losses)) if losses else
               float("nan"), "lr": sched.get_last_lr()[0], "seconds": time.time() - t0,
               **{f"{n}/{k}": v for n, m in metrics.items() for k, v in m.items()}}
        history.append(row)
        epoch, start = epoch + 1, 0
        if not main:
            continue
        new_file = not log_path.exists()
        with open(log_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new_file:
                w.writeheader()
            w.writerow(row)
        if writer:
            for k, v in row.items():
                if "/" in k:
                    writer.add_scalar(f"val/{k}", v, step)
        # the budget spent so far: steps of batch_size samples and seconds of training
        budget = {"steps": step, "samples": step * cfg.batch_size,
                  "train_seconds": round(float(sum(r["seconds"] for r in history)), 1),
                  "hardware": _hardware(device)}
        if score > best:
            best = score
            save_checkpoint(out_dir / "best", model, {**meta_base, "epoch": epoch - 1,
                                                      "metrics": metrics, "budget": budget})
        save_checkpoint(out_dir / "last", model, {**meta_base, "epoch": epoch - 1,
                                                  "metrics": metrics, "budget": budget},
                        state(epoch, 0))
    bar.close()
    if writer:
        writer.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # every rank returns once rank 0's checkpoints are written
    return {"history": history, "best": out_dir / "best", "last": out_dir / "last"}
