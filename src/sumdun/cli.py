"""The ``sumdun`` command line: thin verbs over the library."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from .errors import DataError, Terminated, UsageError


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
                       timeout=args.timeout, retries=args.retries, fallback=args.fallback,
                       total_timeout=args.mllm_timeout)
        if args.instruction_file:
            options["instruction"] = Path(args.instruction_file).read_text().strip()
    describer = get_describer(args.describer, **options)
    encoder = get_encoder(args.encoder)
    out = precompute_prompts(args.dataset, describer, encoder, cache_dir=args.cache,
                             out=args.out, sensor=args.sensor, progress=not args.quiet)
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
                             subsets=not args.no_subsets, progress=not args.quiet)
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


def _parse_options(pairs: list[str] | None, what: str = "method option") -> dict:
    """``["block=64", "x=1.5"]`` -> ``{"block": 64, "x": 1.5}`` (YAML scalars)."""
    import yaml

    from ._yaml import load_yaml

    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {item!r} is not KEY=VALUE")
        try:
            out[key.strip()] = load_yaml(value, f"{what} {key.strip()}")
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


#: options the CLI owns: ``-o`` must not set them behind its back
_CLI_OWNED = {"device": "--device", "prompt": "--prompt", "sensor": "--sensor",
              "ratio": "--ratio", "method": "--method", "dtype": "--dtype",
              "nodata": "--nodata", "tile": "--tile", "overlap": "--overlap"}


def _method_options(pairs: list[str] | None) -> dict:
    """``-o KEY=VALUE`` method options; a key the CLI owns is a usage error naming its flag."""
    options = _parse_options(pairs)
    for key, flag in _CLI_OWNED.items():
        if key in options:
            raise UsageError(f"-o {key}=... : use {flag} instead")
    return options


def _bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise UsageError(f"--bands takes 1-based band numbers like 5,3,2, got {text!r}") from None


def _cmd_fuse(args) -> int:
    from .scene_fusion import fuse_geotiff

    options = _method_options(args.option)
    for key in ("adapt", "adapt_mode", "adapt_params", "adapt_seconds", "save_adapted",
                "weights"):
        value = getattr(args, key)
        if value is not None:
            if key in options:
                raise UsageError(f"-o {key}=... : use --{key.replace('_', '-')} instead")
            options[key] = value
    if args.adapt is not None and args.adapt < 1:
        raise UsageError(f"--adapt takes a number of steps >= 1, got {args.adapt}")
    describer_options = {}
    if args.mllm_timeout is not None and not args.mllm_timeout > 0:
        raise UsageError(f"--mllm-timeout must be a positive number of seconds, got "
                         f"{args.mllm_timeout:g}")
    if args.describer == "mllm":
        describer_options = dict(base_url=args.base_url, model=args.model,
                                 total_timeout=args.mllm_timeout)
    summary: dict = {}
    out = fuse_geotiff(args.ms, args.pan, args.out, method=args.method, sensor=args.sensor,
                       ratio=args.ratio, tile=args.tile, overlap=args.overlap,
                       prompt=args.prompt, describer=args.describer,
                       prompt_scope=args.prompt_scope, device=args.device, dtype=args.dtype,
                       nodata=args.nodata, cog=args.cog, driver=args.of,
                       creation_options=_parse_options(args.co, "--co"),
                       bands=_bands(args.bands), progress=not args.quiet and not args.json,
                       crop_to_overlap=args.crop_to_overlap, summary=summary,
                       overviews=args.overviews,
                       describer_options=describer_options, **options)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(f"wrote {out} ({summary['width']} x {summary['height']} px, {summary['bands']} "
              f"bands, {summary['method']}, {summary['seconds']:.1f} s)")
    return 0


def _cmd_fuse_batch(args) -> int:
    from .batch import format_report, fuse_batch

    options = _method_options(args.option)
    kwargs = dict(tile=args.tile, overlap=args.overlap, dtype=args.dtype, nodata=args.nodata,
                  cog=args.cog, driver=args.of, overviews=args.overviews,
                  creation_options=_parse_options(args.co, "--co"), device=args.device)
    if args.prompt is not None:
        kwargs["prompt"] = args.prompt
    report = fuse_batch(args.manifest, args.outdir, method=args.method, sensor=args.sensor,
                        ratio=args.ratio, scheduler=args.scheduler, workers=args.workers,
                        split_rows=args.split_rows, fresh=args.fresh,
                        allow_outside=args.allow_outside,
                        progress=not args.quiet and not args.json,
                        ms_globs=_split(args.ms_glob), pan_globs=_split(args.pan_glob),
                        ms_asset=args.ms_asset, pan_asset=args.pan_asset, options=options,
                        **{k: v for k, v in kwargs.items() if v is not None})
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        print(format_report(report))
    failed = report["totals"]["failed"]
    if failed:
        print(f"sumdun fuse-batch: error: {failed} scene(s) failed (see "
              f"{Path(args.outdir) / 'batch-report.md'}); fix them and run the same command: "
              "finished scenes are skipped", file=sys.stderr)
    return 1 if failed else 0


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _cmd_evaluate(args) -> int:
    from .evaluation import evaluate

    res = evaluate(_split(args.methods), data=args.data or [],
                   full_resolution=args.full_resolution or [], out=args.out, border=args.border,
                   block=args.block, clip=not args.no_clip, limit=args.limit,
                   progress=not args.quiet, fresh=args.fresh)
    print(res["markdown"])
    print(f"tables and per-sample results in {args.out}/ (table.md, table.tex, results.csv, "
          "results.json, samples.jsonl)")
    return 0


def _cmd_figure(args) -> int:
    from .evaluation import figure_for_sample

    paths = figure_for_sample(args.data, args.index, _split(args.methods), args.out,
                              profile_out=args.profile, dpi=args.dpi)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_ablate(args) -> int:
    from .evaluation import run_ablations

    res = run_ablations(args.config, args.data, out=args.out,
                        names=_split(args.only) or None, epochs=args.epochs,
                        progress=not args.quiet)
    print(res["markdown"])
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), sample=args.sample, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="sumdun", description="SUM-DUN pansharpening toolkit: "
                                "sensor models, Wald protocol, scene I/O.")
    p.add_argument("--version", action="version", version=f"sumdun {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more messages (-vv: debug, and tracebacks)")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars, no warnings, only errors")
    common.add_argument("--threads", type=int, default=None, help="CPU threads for torch and "
                        "BLAS (default: the cores not busy now, at least 1; SUMDUN_THREADS)")

    def command(name, **kw):  # every command takes -v, -q and --threads
        return sub.add_parser(name, parents=[common], **kw)

    s = command("sensors", help="print the sensor table")
    s.add_argument("--json", action="store_true", help="all fields and sources as JSON")
    s.set_defaults(func=_cmd_sensors)

    s = command("samples", help="list the dgsamples scenes found on this machine")
    s.set_defaults(func=_cmd_samples)

    s = command("methods", help="list the fusion methods of the registry")
    s.set_defaults(func=_cmd_methods)

    s = command("degrade", help="Wald-degrade an MS + PAN GeoTIFF pair (reduced-"
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

    s = command("prompts", help="describe and embed every sample of a PanCollection "
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
    s.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    s.add_argument("--retries", type=int, default=2)
    s.add_argument("--mllm-timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds for one description, all requests and retries together "
                   "(default: no bound beyond --timeout per request)")
    s.add_argument("--fallback", choices=("stats",), default=None,
                   help="use the stats describer when the MLLM fails (default: stop)")
    s.add_argument("--instruction-file", default=None, help="text file with the instruction")
    s.set_defaults(func=_cmd_prompts)

    s = command("build-dataset", help="reduced-resolution training data (PanCollection "
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

    s = command("train", help="train SUM-DUN from a YAML configuration")
    s.add_argument("--config", required=True, help="YAML file (fields of TrainConfig)")
    s.add_argument("--out-dir", default=None, help="override out_dir")
    s.add_argument("--resume", action="store_true", help="continue from <out_dir>/last")
    s.set_defaults(func=_cmd_train)

    s = command("fuse", help="pansharpen a GeoTIFF MS + PAN pair of any size, tile by "
                "tile, into a georeferenced GeoTIFF on the PAN grid")
    s.add_argument("ms", help="multispectral GeoTIFF")
    s.add_argument("pan", help="panchromatic GeoTIFF (same CRS, pixel size MS / ratio)")
    s.add_argument("out", help="output GeoTIFF (written to a temporary name, then renamed)")
    s.add_argument("--method", default=None, help="registry name (see `sumdun methods`); "
                   "default sumdun")
    s.add_argument("--sensor", default=None, help="sensor (see `sumdun sensors`): MTF gains "
                   "and bit depth; default generic")
    s.add_argument("--ratio", type=int, default=4, help="PAN/MS pixel-size ratio (default 4)")
    s.add_argument("--tile", type=int, default=512, help="tile size in PAN pixels (default "
                   "512; memory grows with its square)")
    s.add_argument("--overlap", type=int, default=32, help="context on each inner tile side, "
                   "PAN pixels, blended (default 32)")
    s.add_argument("--prompt", default=None, help="SUM-DUN: a fixed text prompt")
    s.add_argument("--describer", choices=("stats", "mllm"), default="stats",
                   help="SUM-DUN: who writes the prompt when --prompt is not given")
    s.add_argument("--prompt-scope", choices=("scene", "tile"), default="scene",
                   help="one prompt per scene (from an overview, default) or per tile")
    s.add_argument("--base-url", default="http://127.0.0.1:11434/v1", help="MLLM server")
    s.add_argument("--model", default="qwen2.5vl", help="MLLM model name")
    s.add_argument("--mllm-timeout", type=float, default=20.0, metavar="SECONDS",
                   help="MLLM describer: seconds for one description, connection, reading and "
                   "retries together (default 20)")
    s.add_argument("--device", default="auto", help="SUM-DUN device: auto (default: CUDA "
                   "when present), cpu or cuda")
    s.add_argument("--dtype", default=None, help="output data type (default: the MS dtype, "
                   "rounded and clipped; e.g. float32)")
    s.add_argument("--nodata", default=None, help="nodata value of both inputs: a number, nan, "
                   "or none (default: from the files; black MS collars when they have none)")
    s.add_argument("--bands", default=None, help="MS bands to fuse, 1-based, e.g. 5,3,2,7 "
                   "(default all)")
    s.add_argument("--of", default=None, metavar="FORMAT", help="output format, a GDAL driver "
                   "(default from the extension: .tif GTiff, .jp2 JP2OpenJPEG, .img HFA)")
    s.add_argument("--co", action="append", metavar="NAME=VALUE", help="GDAL creation option, "
                   "repeatable (e.g. --co PREDICTOR=2)")
    s.add_argument("--cog", action="store_true", help="write a Cloud-Optimised GeoTIFF "
                   "(same as --of COG)")
    s.add_argument("--overviews", action="store_true", help="add internal overviews "
                   "(averaged, as gdaladdo -r average)")
    s.add_argument("--json", action="store_true", help="print a JSON summary of the run")
    s.add_argument("--weights", default=None, help="SUM-DUN: a checkpoint folder (e.g. one "
                   "written by --save-adapted) instead of the shipped weights")
    s.add_argument("--adapt", type=int, default=None, metavar="STEPS", help="SUM-DUN: "
                   "fine-tune a copy of the weights on this scene first (a central window)")
    s.add_argument("--adapt-mode", default=None, choices=("rr", "fr", "both"),
                   help="both (default: best in benchmarks/adaptation.py), fr "
                   "(full-resolution losses) or rr (Wald-degraded scene)")
    s.add_argument("--adapt-params", default=None, choices=("physics", "all"),
                   help="what --adapt fine-tunes: physics (default: the degradation "
                   "modules, the start mix, the band weights) or all")
    s.add_argument("--adapt-seconds", type=float, default=None, help="time budget of --adapt")
    s.add_argument("--save-adapted", default=None, metavar="DIR", help="keep the adapted "
                   "weights for other scenes of this sensor (--weights DIR)")
    s.add_argument("--crop-to-overlap", action="store_true", help="fuse the shared ground "
                   "when the MS and PAN extents differ")
    s.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="method option, repeatable (e.g. -o block=64 for bdsd)")
    s.set_defaults(func=_cmd_fuse)

    s = command("fuse-batch", help="fuse every scene pair of a manifest (CSV, YAML, folder "
                "or STAC) on Dask: a local cluster or --scheduler; resumable")
    s.add_argument("manifest", help="CSV or YAML (columns ms, pan; optional id, sensor, "
                   "method, ratio, out), STAC ItemCollection JSON, or a folder of MS + PAN files")
    s.add_argument("outdir", help="output folder (<id>.tif per scene, batch-report.json/.md)")
    s.add_argument("--method", default=None, help="default method (a row's method wins); "
                   "default sumdun")
    s.add_argument("--sensor", default=None, help="default sensor (a row's sensor wins)")
    s.add_argument("--ratio", type=int, default=4, help="default PAN/MS ratio (default 4)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask "
                   "scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    s.add_argument("--workers", type=int, default=None, help="local cluster: worker "
                   "processes (default: the idle cores)")
    s.add_argument("--split-rows", type=int, default=8, help="split scenes of more tile rows "
                   "than this into strips of this many, fused by different workers "
                   "(default 8)")
    s.add_argument("--fresh", action="store_true", help="fuse complete scenes again")
    s.add_argument("--allow-outside", action="store_true", help="let a manifest row's out "
                   "column write outside OUTDIR (refused by default)")
    s.add_argument("--ms-glob", default=None, help="folder manifests: comma-separated MS "
                   "patterns (default *ms*.tif,*mul*.tif, case-insensitive)")
    s.add_argument("--pan-glob", default=None, help="folder manifests: PAN patterns "
                   "(default *pan*.tif)")
    s.add_argument("--ms-asset", default=None, help="STAC: the MS asset key")
    s.add_argument("--pan-asset", default=None, help="STAC: the PAN asset key")
    s.add_argument("--tile", type=int, default=512, help="tile size, PAN pixels (default 512)")
    s.add_argument("--overlap", type=int, default=32, help="tile overlap (default 32)")
    s.add_argument("--prompt", default=None, help="SUM-DUN: one fixed prompt for every scene")
    s.add_argument("--device", default="auto", help="SUM-DUN device on the workers: auto "
                   "(CUDA when present), cpu or cuda")
    s.add_argument("--dtype", default=None, help="output data type (default: the MS dtype)")
    s.add_argument("--nodata", default=None, help="nodata of every input: number, nan, none")
    s.add_argument("--of", default=None, metavar="FORMAT", help="output GDAL driver")
    s.add_argument("--co", action="append", metavar="NAME=VALUE", help="creation option")
    s.add_argument("--cog", action="store_true", help="write Cloud-Optimised GeoTIFFs")
    s.add_argument("--overviews", action="store_true", help="add internal overviews")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="method option for every scene, repeatable")
    s.set_defaults(func=_cmd_fuse_batch)

    s = command("evaluate", help="run methods on PanCollection test files; paper-style "
                "tables (Markdown, LaTeX, CSV, JSON), resumable")
    s.add_argument("--methods", required=True, help="comma-separated registry names or "
                   "checkpoint folders, e.g. sumdun,bt-h,bdsd,pracs; presets: paper (the "
                   "paper's Tables 2-3 rows), all, classical, neural")
    s.add_argument("--data", action="append", help="reduced-resolution .h5 with gt, ms, pan "
                   "(repeatable)")
    s.add_argument("--full-resolution", action="append", help="full-resolution .h5 with ms "
                   "and pan (repeatable): D_lambda, D_S, HQNR")
    s.add_argument("--out", default="eval", help="output folder (default eval/)")
    s.add_argument("--border", type=int, default=0, help="pixels cut from each side before "
                   "the reduced-resolution indices (default 0)")
    s.add_argument("--block", type=int, default=32, help="Q2n / Q / D_S block (default 32)")
    s.add_argument("--no-clip", action="store_true", help="do not clip fused values to the "
                   "bit-depth range first")
    s.add_argument("--limit", type=int, default=None, help="first N samples of each file")
    s.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    s.set_defaults(func=_cmd_evaluate)

    s = command("figure", help="quicklooks (one stretch, zoomed inset), error maps and "
                "a spectral profile of methods on one sample")
    s.add_argument("data", help="PanCollection .h5 (gt gives the error maps)")
    s.add_argument("--index", type=int, default=0, help="sample index (default 0)")
    s.add_argument("--methods", required=True, help="comma-separated, e.g. sumdun,bt-h,exp")
    s.add_argument("--out", required=True, help="figure file (.png or .pdf)")
    s.add_argument("--profile", default=None, help="also write the spectral profile here")
    s.add_argument("--dpi", type=int, default=100)
    s.set_defaults(func=_cmd_figure)

    s = command("ablate", help="train and evaluate the paper's ablations (Tables 4, 5) "
                "under one budget; print the PSNR table")
    s.add_argument("--config", required=True, help="training YAML shared by every ablation")
    s.add_argument("--data", action="append", required=True, help="test .h5 (repeatable)")
    s.add_argument("--out", default="runs/ablation", help="output folder")
    s.add_argument("--only", default=None, help="comma-separated ablation tags or names "
                   "(default all)")
    s.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    s.set_defaults(func=_cmd_ablate)

    s = command("demo", help="fuse a real sample scene; write GeoTIFF, quicklook PNG "
                "and metrics table")
    s.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    s.add_argument("--sample", default="wv3", help="dgsamples scene: wv3 (default) or wv2")
    s.set_defaults(func=_cmd_demo)
    return p


_INTERRUPTED = {
    "fuse": "the output was not written (an earlier file of that name is kept)",
    "fuse-batch": "finished scenes are kept in {outdir}: run the same command to resume",
    "evaluate": "the results so far are kept in {out}/samples.jsonl: run the same command "
                "to resume",
    "train": "the last checkpoint is kept: run the same command with --resume to continue",
    "ablate": "finished ablations are kept: run the same command to continue",
    "prompts": "the cache keeps what was computed: run the same command to resume",
}


def _show_warning(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"sumdun {command}: warning: {message}", file=sys.stderr)
    return show


def _setup(args) -> None:
    """Logging, warnings and threads as the common options say."""
    import logging
    import warnings

    level = logging.ERROR if args.quiet else (logging.WARNING, logging.INFO,
                                              logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format=f"sumdun {args.command}: %(message)s")
    warnings.showwarning = _show_warning(args.command)
    if args.quiet:
        warnings.simplefilter("ignore")
    from .threads import set_threads

    n = set_threads(args.threads)
    logging.getLogger("sumdun").info("using %d CPU thread(s)", n)


@contextlib.contextmanager
def _stop_signals_interrupt():
    """SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the main thread
    for the duration, so they unwind like Ctrl-C; the previous handlers come back after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum, frame):
        raise Terminated(signum)

    # a signal ignored on purpose stays ignored (`nohup sumdun fuse ...` must survive SIGHUP)
    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    before = {s: signal.signal(s, stop) for s in wanted
              if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success, 2 usage errors (bad option, argument, configuration or path),
    1 data errors (unreadable or mismatched inputs, corrupt checkpoints, a full disk),
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP)."""
    with _stop_signals_interrupt():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    name = f"sumdun {args.command}"
    try:
        if getattr(args, "threads", None) is not None and args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        _setup(args)
        return args.func(args)
    except (UsageError, FileNotFoundError, KeyError, IsADirectoryError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{name}: error: {msg}", file=sys.stderr)
        return 2
    except (DataError, OSError, ValueError, RuntimeError, ImportError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        if args.verbose >= 2:
            import traceback

            traceback.print_exc()
        return 1
    except KeyboardInterrupt as err:
        what = _INTERRUPTED.get(args.command, "nothing half-written was left")
        how, code = "interrupted", 130
        if isinstance(err, Terminated):
            import signal

            how, code = f"stopped by {signal.Signals(err.signum).name}", 128 + err.signum
        print(f"{name}: {how}; "
              f"{what.format(out=getattr(args, 'out', ''), outdir=getattr(args, 'outdir', ''))}",
              file=sys.stderr)
        return code
    except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback on -vv
        print(f"{name}: internal error: {type(err).__name__}: {err} (run with -vv for the "
              "traceback and please report it)", file=sys.stderr)
        if args.verbose >= 2:
            import traceback

            traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
