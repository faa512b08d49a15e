"""Fuse many scenes on Dask: ``sumdun fuse-batch MANIFEST OUTDIR``.

Each scene is one task (:func:`sumdun.scene_fusion.fuse_geotiff`, with its guarantees:
georeferencing, nodata, atomic write, provenance tags); a scene of more than ``split_rows``
tile rows is split into strips of tile rows that run as separate tasks (two workers share
one big scene) and a last task joins them (:func:`~sumdun.scene_fusion.join_strips`), pixel
for pixel the single-scene output. Memory per task is that of single-scene fusion: one tile
and a strip of its overlap.

Workers: a ``LocalCluster`` of processes (one task at a time each) sized to the idle cores,
or an existing cluster (``scheduler``). Each task sets torch / BLAS threads to the cores of
its machine divided by the task slots there, so workers x threads never oversubscribe the
cores. Models and text encoders load once per worker process (module caches), not per task.
A GPU on a worker is used by SUM-DUN (``device=auto``).

Resume: every output carries a ``SUMDUN_JOB`` tag (a hash of the inputs' paths, sizes and
times, the method, sensor, ratio and options); an output with the same tag is complete and
skipped, and finished strips of a split scene are reused. One bad scene never stops the
others: it is reported with its error. The report lands in ``OUTDIR/batch-report.json`` and
``OUTDIR/batch-report.md``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path

from .._deps import require
from ..errors import DataError, UsageError
from ..io.atomic import atomic_path, remove_stale_parts
from .manifest import Scene, read_manifest

__all__ = ["fuse_batch", "format_report"]

log = logging.getLogger("sumdun.batch")

#: folder (inside OUTDIR) of the strips of split scenes until they are joined
STRIPS = ".sumdun-strips"
REPORT = "batch-report"
#: fuse_geotiff arguments a batch passes to every scene
FUSE_KEYS = ("tile", "overlap", "dtype", "nodata", "cog", "compress", "driver",
             "creation_options", "overviews", "prompt", "describer", "prompt_scope",
             "describer_options", "device", "crop_to_overlap", "bands")


def _job_key(scene: Scene, method: str, sensor, ratio: int, kwargs: dict, options: dict) -> str:
    """A hash of everything that makes the output: input files (path, size, mtime), method,
    sensor, ratio, fusion arguments and options, and the sumdun version."""
    from .. import __version__

    def stamp(path: str):
        try:
            st = os.stat(path)
            return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
        except OSError:
            return [path]

    doc = json.dumps([stamp(scene.ms), stamp(scene.pan), method, sensor, ratio, kwargs,
                      options, __version__], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


def _complete(path: Path, key: str) -> bool:
    """True when ``path`` is a raster written by a job with this key."""
    if not path.exists():
        return False
    rasterio = require("rasterio")
    try:
        with rasterio.open(path) as ds:
            return ds.tags().get("SUMDUN_JOB") == key
    except rasterio.errors.RasterioError:
        return False


# ----------------------------------------------------------------------------- worker side

def _use_threads(threads: dict) -> None:
    """Set torch / BLAS threads for this task from the client's per-worker plan."""
    from ..threads import set_threads

    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        address = None
    set_threads(threads.get(address) or 1)


def _fail(err: BaseException) -> str:
    known = (UsageError, DataError, ValueError, OSError, KeyError, RuntimeError, ImportError)
    text = err.args[0] if isinstance(err, KeyError) and err.args else err
    return str(text) if isinstance(err, known) else f"{type(err).__name__}: {err}"


def _fuse_task(job: dict, threads: dict, tile_rows=None, out: str | None = None) -> dict:
    """Fuse a whole scene (or the strip ``tile_rows`` into ``out``) in a worker; never raises
    for a bad scene: the result says what went wrong."""
    _use_threads(threads)
    from ..scene_fusion import fuse_geotiff

    target = Path(out or job["out"])
    t0 = time.perf_counter()
    if tile_rows is not None and _complete(target, job["key"]):
        return {"status": "done", "path": str(target), "seconds": 0.0, "warnings": []}
    summary: dict = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fuse_geotiff(job["ms"], job["pan"], target, method=job["method"],
                         sensor=job["sensor"], ratio=job["ratio"], progress=False,
                         summary=summary, tile_rows=tile_rows, tags={"SUMDUN_JOB": job["key"]},
                         **job["kwargs"], **job["options"])
    except Exception as err:  # noqa: BLE001 - one scene's failure is reported, not raised
        return {"status": "failed", "error": _fail(err),
                "seconds": round(time.perf_counter() - t0, 3)}
    return {"status": "done", "path": str(target), "seconds": round(time.perf_counter() - t0, 3),
            "warnings": sorted({str(w.message) for w in caught
                                if issubclass(w.category, UserWarning)})}


def _join_task(job: dict, threads: dict, strips: list) -> dict:
    """Join a split scene's strips into its output, then remove them."""
    _use_threads(threads)
    from ..scene_fusion import join_strips

    failed = [s for s in strips if s["status"] != "done"]
    seconds = sum(s["seconds"] for s in strips)
    if failed:
        return {"status": "failed", "error": failed[0]["error"], "seconds": seconds}
    t0 = time.perf_counter()
    kw = job["kwargs"]
    try:
        join_strips([s["path"] for s in strips], job["out"], driver=kw.get("driver"),
                    cog=kw.get("cog", False), creation_options=kw.get("creation_options"),
                    compress=kw.get("compress", "deflate"), overviews=kw.get("overviews", False),
                    tile=kw.get("tile", 512))
    except Exception as err:  # noqa: BLE001
        return {"status": "failed", "error": _fail(err), "seconds": seconds}
    shutil.rmtree(Path(strips[0]["path"]).parent, ignore_errors=True)
    warns = sorted({w for s in strips for w in s.get("warnings", [])})
    return {"status": "done", "path": job["out"], "warnings": warns,
            "seconds": round(seconds + time.perf_counter() - t0, 3)}


# ----------------------------------------------------------------------------- client side

def _thread_plan(client) -> dict:
    """Threads per task for each worker: its machine's cores over the task slots there."""
    info = _workers(client)
    from ..threads import _cores

    cores = client.run(_cores)
    slots: dict[str, int] = {}
    for addr, w in info.items():
        slots[w["host"]] = slots.get(w["host"], 0) + int(w.get("nthreads", 1))
    return {addr: max(1, cores.get(addr, 1) // slots[w["host"]]) for addr, w in info.items()}


def _workers(client) -> dict:
    """Every worker's scheduler info (newer Dask lists only the first 5 unless asked)."""
    try:
        return client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # Dask before 2025.4
        return client.scheduler_info()["workers"]


def _connect(scheduler: str | None, workers: int | None):
    """``(client, cluster or None)``: an existing scheduler, else a LocalCluster of processes."""
    distributed = require("distributed")  # ImportError: pip install 'sumdun[batch]'
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as err:
            raise DataError(f"cannot reach the Dask scheduler at {scheduler} ({err}); check "
                            "the address (tcp://HOST:8786) or leave --scheduler out for a "
                            "local cluster") from None
    from ..threads import default_threads

    n = workers or default_threads()
    if not log.isEnabledFor(logging.DEBUG):  # the scheduler runs here: its INFO lines only on -vv
        logging.getLogger("distributed").setLevel(logging.WARNING)
    try:
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0",
                                           silence_logs=logging.ERROR)
    except RuntimeError as err:
        raise DataError(f"could not start {n} local Dask worker process(es) ({err}); from a "
                        "script, call fuse_batch under `if __name__ == '__main__':` (worker "
                        "processes import the main module)") from None
    log.info("local Dask cluster: %d worker(s), dashboard %s", n, cluster.dashboard_link)
    return distributed.Client(cluster), cluster


def _plan(scenes: list[Scene], outdir: Path, method, sensor, ratio, kwargs, options,
          split_rows: int, fresh: bool, allow_outside: bool = False
          ) -> tuple[list[dict], list[dict]]:
    """``(jobs to run, finished rows)``: checks every scene's settings, skips complete ones."""
    from ..fusion import default_method, get_method, validate_options
    from ..scene_fusion import scene_grid
    from ..sensors import get_sensor

    jobs, rows = [], []
    top = os.path.abspath(outdir)
    # temporary files a killed run left in OUTDIR, listed once (a glob per scene compiled a
    # pattern per name: 5 of 14 s for 5000 scenes)
    leftovers = {q.name.split(".", 2)[1] for q in outdir.glob(".*.part*")
                 if q.name.count(".") >= 2}
    for sc in scenes:
        row = {"id": sc.id, "ms": sc.ms, "pan": sc.pan, "status": "", "seconds": 0.0,
               "pan_mpx": None, "output": None, "error": None, "warnings": []}
        rows.append(row)
        if sc.problem:
            row.update(status="failed", error=sc.problem)
            continue
        m = sc.method or method or default_method()
        opts = {**options, **sc.options}
        try:
            get_method(m)
            validate_options(m, dict(opts))
            s = sc.sensor or sensor
            if s is not None:
                s = get_sensor(s).key
        except (UsageError, KeyError, ValueError) as err:
            row.update(status="failed", error=_fail(err))
            continue
        r = sc.ratio or ratio
        out = Path(sc.out) if sc.out else Path(f"{sc.id}.tif")
        out = out if out.is_absolute() else outdir / out
        inside = os.path.commonpath([top, os.path.abspath(out)]) == top  # no disk access
        if not allow_outside and not inside:
            row.update(status="failed", error=f"output {sc.out} is outside the output folder "
                       f"{outdir} (the manifest's out column); give a path inside it, or pass "
                       "--allow-outside (allow_outside=True) to write there on purpose")
            continue
        key = _job_key(sc, m, s, r, kwargs, opts)
        row["output"] = str(out)
        if not inside or out.parent != outdir or out.name.split(".", 1)[0] in leftovers:
            remove_stale_parts(out)
        strip_dir = outdir / STRIPS / sc.id
        if strip_dir.is_dir():  # strips whose writer was killed: '.rows_A_B.tif.<pid>...part'
            for name in {q.name[1:].split(".tif.")[0] for q in strip_dir.glob(".rows_*.part*")}:
                remove_stale_parts(strip_dir / f"{name}.tif")
        if not fresh and _complete(out, key):
            row.update(status="skipped", note="complete")
            continue
        try:
            H, W, n_rows = scene_grid(sc.ms, sc.pan, r, kwargs.get("tile", 512),
                                      kwargs.get("overlap", 32))
        except Exception as err:  # noqa: BLE001 - unreadable or mismatched: this scene only
            row.update(status="failed", error=_fail(err))
            continue
        row["pan_mpx"] = round(H * W / 1e6, 3)
        job = {"id": sc.id, "ms": sc.ms, "pan": sc.pan, "out": str(out), "method": m,
               "sensor": s, "ratio": r, "kwargs": kwargs, "options": opts, "key": key,
               "pixels": H * W, "strips": None}
        if n_rows > split_rows and not opts.get("adapt"):
            cuts = list(range(0, n_rows, split_rows)) + [n_rows]
            if n_rows - cuts[-2] < split_rows // 2 and len(cuts) > 2:
                cuts.pop(-2)  # no thin last strip
            strip_dir.mkdir(parents=True, exist_ok=True)
            if fresh:
                for f in strip_dir.glob("rows_*.tif"):
                    f.unlink()
            job["strips"] = [(a, b, str(strip_dir / f"rows_{a:05d}_{b:05d}.tif"))
                             for a, b in zip(cuts, cuts[1:])]
        jobs.append(job)
    return jobs, rows


def fuse_batch(manifest, outdir, *, method: str | None = None, sensor: str | None = None,
               ratio: int = 4, scheduler: str | None = None, workers: int | None = None,
               split_rows: int = 8, fresh: bool = False, progress: bool = True,
               ms_globs=None, pan_globs=None, ms_asset: str | None = None,
               pan_asset: str | None = None, client=None, options: dict | None = None,
               allow_outside: bool = False, **fuse_kwargs) -> dict:
    """Fuse every scene of ``manifest`` into ``outdir`` on Dask; return the report.

    Args:
        manifest: CSV, YAML, STAC JSON or a folder (:func:`~sumdun.batch.read_manifest`).
        outdir: output folder (created); ``<id>.tif`` per scene unless the manifest names one.
        method, sensor, ratio: defaults for scenes whose manifest row does not set them.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); a local
            cluster of ``workers`` processes (default: the idle cores) otherwise.
        split_rows: scenes with more tile rows than this are split into strips of this many
            tile rows (tasks of their own), then joined.
        fresh: fuse every scene again, even complete ones.
        client: a ``distributed.Client`` to use instead (left open).
        options: method options for every scene (a row's ``options`` override them).
        allow_outside: let a manifest row's ``out`` write outside ``outdir`` (an absolute
            path, ``../x.tif``); by default such a row fails with a message saying so.
        **fuse_kwargs: :func:`~sumdun.scene_fusion.fuse_geotiff` arguments for every scene
            (``tile``, ``overlap``, ``dtype``, ``nodata``, ``cog``, ``creation_options``, ...).

    Returns:
        ``{"scenes": [row, ...], "totals": {...}}``; each row has ``id``, ``status``
        (``done``, ``skipped`` or ``failed``), ``seconds``, ``pan_mpx``, ``output``, ``error``.
    """
    unknown = sorted(set(fuse_kwargs) - set(FUSE_KEYS))
    if unknown:
        raise UsageError(f"unknown fuse argument(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(FUSE_KEYS)}")
    if split_rows < 1:
        raise UsageError(f"split_rows must be at least 1 tile row, got {split_rows}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    from ..scene_fusion import _check_tiling

    _check_tiling(fuse_kwargs.get("tile", 512), fuse_kwargs.get("overlap", 32), ratio)
    scenes = read_manifest(manifest, ms_globs, pan_globs, ms_asset, pan_asset)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"the output folder {outdir} is a file; give a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to {outdir} (permission denied); choose another folder")
    t0 = time.perf_counter()
    jobs, rows = _plan(scenes, outdir, method, sensor, ratio, dict(fuse_kwargs),
                       dict(options or {}), split_rows, fresh, allow_outside)
    by_id = {r["id"]: r for r in rows}
    n_workers = 0
    if jobs:
        own = client is None
        cluster = None
        if own:
            client, cluster = _connect(scheduler, workers)
        try:
            n_workers = len(_workers(client))
            _run(client, jobs, by_id, progress)
        finally:
            if own:
                client.close()
                if cluster is not None:
                    cluster.close()
    strips = outdir / STRIPS
    if strips.is_dir() and not any(strips.rglob("*.tif")):
        shutil.rmtree(strips, ignore_errors=True)  # nothing left to resume
    report = _totals(rows, time.perf_counter() - t0, n_workers)
    _write_report(outdir, report)
    return report


def _run(client, jobs: list[dict], by_id: dict, progress: bool) -> None:
    distributed = require("distributed")
    tqdm = require("tqdm").tqdm
    threads = _thread_plan(client)
    futures = {}
    # big scenes first, so the small ones fill the gaps at the end
    for job in sorted(jobs, key=lambda j: -j["pixels"]):
        if job["strips"]:
            parts = [client.submit(_fuse_task, job, threads, (a, b), path, pure=False,
                                   priority=job["pixels"], key=f"strip-{job['id']}-{a}-{b}-"
                                   f"{job['key'][:8]}") for a, b, path in job["strips"]]
            fut = client.submit(_join_task, job, threads, parts, pure=False,
                                priority=job["pixels"])
        else:
            fut = client.submit(_fuse_task, job, threads, pure=False, priority=job["pixels"])
        futures[fut] = job
    with tqdm(total=len(futures), unit="scene", disable=not progress,
              desc=f"fuse-batch on {len(threads)} worker(s)") as bar:
        for fut in distributed.as_completed(futures):
            job = futures[fut]
            row = by_id[job["id"]]
            try:
                res = fut.result()
            except Exception as err:  # noqa: BLE001 - e.g. KilledWorker after retries
                res = {"status": "failed", "seconds": 0.0,
                       "error": f"{type(err).__name__}: {err} (a worker died on this scene "
                                "repeatedly; out of memory?)"}
            row.update(status=res["status"], seconds=res.get("seconds", 0.0),
                       error=res.get("error"), warnings=res.get("warnings", []))
            bar.update(1)
            if res["status"] == "failed":
                bar.write(f"sumdun fuse-batch: {job['id']} failed: {res['error']}")


def _totals(rows: list[dict], seconds: float, workers: int) -> dict:
    count = {k: sum(r["status"] == k for r in rows) for k in ("done", "skipped", "failed")}
    mpx = sum(r["pan_mpx"] or 0 for r in rows if r["status"] == "done")
    return {"scenes": rows, "totals": {**count, "scenes": len(rows), "workers": workers,
                                       "seconds": round(seconds, 3),
                                       "pan_mpx_done": round(mpx, 3),
                                       "pan_mpx_per_s": round(mpx / seconds, 4) if mpx else None}}


def format_report(report: dict) -> str:
    """The report as a Markdown table and a totals line."""
    lines = ["| scene | status | s | PAN Mpx | output / error |", "|---|---|---|---|---|"]
    for r in report["scenes"]:
        what = r["error"] if r["status"] == "failed" else (r["output"] or "")
        what = str(what).replace("|", "\\|").replace("\n", " ")
        mpx = "" if r["pan_mpx"] is None else f"{r['pan_mpx']:.2f}"
        lines.append(f"| {r['id']} | {r['status']} | {r['seconds']:.1f} | {mpx} | {what} |")
    t = report["totals"]
    rate = f", {t['pan_mpx_per_s']:.3f} PAN Mpx/s" if t["pan_mpx_per_s"] else ""
    lines.append("")
    lines.append(f"{t['done']} done, {t['skipped']} skipped, {t['failed']} failed of "
                 f"{t['scenes']} in {t['seconds']:.1f} s on {t['workers']} worker(s){rate}")
    return "\n".join(lines)


def _write_report(outdir: Path, report: dict) -> None:
    for suffix, text in ((".json", json.dumps(report, indent=2)),
                         (".md", format_report(report) + "\n")):
        with atomic_path(outdir / (REPORT + suffix)) as tmp:
            tmp.write_text(text)
