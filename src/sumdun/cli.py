"""The ``sumdun`` command line: thin verbs over the library."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_sensors(args) -> int:
    from .sensors import list_sensors

    sensors = list_sensors()
    if args.json:
        print(json.dumps([{
            "key": s.key, "name": s.name, "bands": list(s.band_names), "bits": s.bits,
            "ratio": s.ratio, "ms_gnyq": list(s.ms_gnyq), "pan_gnyq": s.pan_gnyq,
            "rgb": list(s.rgb), "nir": s.nir, "aliases": list(s.aliases), "sources": s.sources,
        } for s in sensors], indent=2))
        return 0
    rows = [("key", "name", "bands", "bits", "ratio", "MS GNyq", "PAN GNyq", "RGB", "NIR")]
    for s in sensors:
        rows.append((s.key, s.name, str(s.n_bands), str(s.bits or "?"), str(s.ratio),
                     " ".join(f"{g:g}" for g in s.ms_gnyq), f"{s.pan_gnyq:g}",
                     ",".join(map(str, s.rgb)), str(s.nir)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print("\nMTF gains: Vivone toolbox genMTF.m / MTF_PAN.m; `sumdun sensors --json` lists every "
          "source.")
    return 0


def _cmd_samples(args) -> int:
    from .io import list_samples, sample_paths

    for name in list_samples():
        try:
            ms, pan = sample_paths(name)
            print(f"{name}\tMS {ms}\n\tPAN {pan}")
        except (ImportError, FileNotFoundError) as err:
            print(f"{name}\tunavailable: {err}")
    return 0


def _cmd_methods(args) -> int:
    from .fusion import list_methods

    methods = list_methods()
    width = max(map(len, methods))
    for name, desc in methods.items():
        print(f"{name.ljust(width)}  {desc}")
    return 0


def _cmd_degrade(args) -> int:
    from .wald_files import degrade_files

    out = degrade_files(args.ms, args.pan, args.outdir, sensor=args.sensor, ratio=args.ratio,
                        pan_reduction=args.pan_reduction, dtype=args.dtype)
    for path in out:
        print(path)
    return 0


def _cmd_prompts(args) -> int:
    from .prompts import get_describer, get_encoder
    from .prompts.dataset import precompute_prompts

    options = {}
    if args.describer == "mllm":
        options = dict(base_url=args.base_url, model=args.model, api=args.api,
                       timeout=args.timeout, retries=args.retries, fallback=args.fallback)
        if args.instruction_file:
            options["instruction"] = Path(args.instruction_file).read_text().strip()
    describer = get_describer(args.describer, **options)
    encoder = get_encoder(args.encoder)
    out = precompute_prompts(args.dataset, describer, encoder, cache_dir=args.cache,
                             out=args.out, sensor=args.sensor)
    print(f"wrote {out}")
    return 0


def _cmd_build_dataset(args) -> int:
    from .data import build_dataset
    from .io import load_sample, read_pair

    pairs = [load_sample(n) for n in (args.samples.split(",") if args.samples else [])]
    for spec in args.pair or []:
        ms, _, pan = spec.partition(",")
        pairs.append(read_pair(ms, pan or None, sensor=args.sensor))
    if not pairs:
        raise ValueError("nothing to build from: give --samples wv2,wv3 and/or --pair MS.tif,PAN.tif")
    manifest = build_dataset(pairs, args.out, patch=args.patch, stride=args.stride,
                             fractions=tuple(float(x) for x in args.split.split(",")),
                             subsets=not args.no_subsets)
    for name, m in manifest.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in m["patches"].items()))
    return 0


def _cmd_train(args) -> int:
    from .engine.train import fit, load_config

    cfg = load_config(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    result = fit(cfg, resume=args.resume)
    print(f"best checkpoint: {result['best']}\nlast checkpoint: {result['last']}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), sample=args.sample)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="sumdun", description="SUM-DUN pansharpening toolkit: "
                                "sensor models, Wald protocol, scene I/O.")
    p.add_argument("--version", action="version", version=f"sumdun {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("sensors", help="print the sensor table")
    s.add_argument("--json", action="store_true", help="all fields and sources as JSON")
    s.set_defaults(func=_cmd_sensors)

    s = sub.add_parser("samples", help="list the dgsamples scenes found on this machine")
    s.set_defaults(func=_cmd_samples)

    s = sub.add_parser("methods", help="list the fusion methods of the registry")
    s.set_defaults(func=_cmd_methods)

    s = sub.add_parser("degrade", help="Wald-degrade an MS + PAN GeoTIFF pair (reduced-"
                       "resolution pair for training and evaluation)")
    s.add_argument("ms", help="multispectral GeoTIFF")
    s.add_argument("pan", help="panchromatic GeoTIFF")
    s.add_argument("outdir", help="folder for ms_lr.tif, pan_lr.tif and gt.tif")
    s.add_argument("--sensor", default=None, help="sensor name (see `sumdun sensors`); "
                   "default: generic MTF gains")
    s.add_argument("--ratio", type=int, default=4, help="PAN/MS pixel-size ratio (default 4)")
    s.add_argument("--pan-reduction", choices=("imresize", "mtf"), default="imresize",
                   help="PAN reduction: MATLAB bicubic imresize (toolbox default) or the PAN "
                   "MTF filter + decimation")
    s.add_argument("--dtype", default="float32", help="output data type (default float32; "
                   "an integer type rounds and clips)")
    s.set_defaults(func=_cmd_degrade)

    s = sub.add_parser("prompts", help="describe and embed every sample of a PanCollection "
                       ".h5 (cached, resumable), so training never calls the MLLM")
    s.add_argument("dataset", help="PanCollection .h5 with ms and pan")
    s.add_argument("--describer", choices=("stats", "mllm"), default="stats")
    s.add_argument("--encoder", default="bge-small", help="bge-small (default), hash (tests "
                   "only), or st:MODEL for a local sentence-transformers model")
    s.add_argument("--cache", default=None, help="cache folder (default <dataset>.prompt-cache)")
    s.add_argument("--out", default=None, help="output .h5 (default <dataset>.prompts.h5)")
    s.add_argument("--sensor", default=None, help="sensor (default: the file's attribute)")
    s.add_argument("--base-url", default="http://127.0.0.1:11434/v1",
                   help="MLLM server (OpenAI protocol: .../v1; Ollama native: host root)")
    s.add_argument("--model", default="qwen2.5vl", help="MLLM model name")
    s.add_argument("--api", choices=("openai", "ollama"), default="openai")
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--retries", type=int, default=2)
    s.add_argument("--fallback", choices=("stats",), default=None,
                   help="use the stats describer when the MLLM fails (default: stop)")
    s.add_argument("--instruction-file", default=None, help="text file with the instruction")
    s.set_defaults(func=_cmd_prompts)

    s = sub.add_parser("build-dataset", help="reduced-resolution training data (PanCollection "
                       ".h5) by Wald's protocol, spatially disjoint train/val/test stripes")
    s.add_argument("out", help="output folder")
    s.add_argument("--samples", default=None, help="dgsamples scenes, e.g. wv2,wv3")
    s.add_argument("--pair", action="append", help="MS.tif,PAN.tif (or a .mat / .h5 file); "
                   "repeatable")
    s.add_argument("--sensor", default=None, help="sensor of the --pair files")
    s.add_argument("--patch", type=int, default=128, help="GT/PAN patch size (LRMS = patch/4)")
    s.add_argument("--stride", type=int, default=32)
    s.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test shares of the rows")
    s.add_argument("--no-subsets", action="store_true", help="no 4-band subsets of 8-band data")
    s.set_defaults(func=_cmd_build_dataset)

    s = sub.add_parser("train", help="train SUM-DUN from a YAML configuration")
    s.add_argument("--config", required=True, help="YAML file (fields of TrainConfig)")
    s.add_argument("--out-dir", default=None, help="override out_dir")
    s.add_argument("--resume", action="store_true", help="continue from <out_dir>/last")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("demo", help="fuse a real sample scene; write GeoTIFF, quicklook PNG "
                       "and metrics table")
    s.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    s.add_argument("--sample", default="wv3", help="dgsamples scene: wv3 (default) or wv2")
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError, RuntimeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sumdun {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
