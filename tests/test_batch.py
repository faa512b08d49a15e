"""``sumdun fuse-batch``: manifests, a Dask LocalCluster of 2 processes, resume, a bad scene,
a worker killed mid-run, and outputs equal to single-scene ``sumdun fuse`` run with other thread
counts (2 torch and BLAS threads there, 1 in each worker)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
distributed = pytest.importorskip("distributed")

from sumdun.batch import fuse_batch, read_manifest  # noqa: E402
from sumdun.cli import main  # noqa: E402
from sumdun.errors import UsageError  # noqa: E402
from sumdun.scene_fusion import fuse_geotiff, join_strips, scene_grid  # noqa: E402

from synthetic import scene, write_pair  # noqa: E402

ARGS = dict(method="bt-h", sensor="wv3", tile=128, overlap=16)
CLI_ARGS = ["--method", "bt-h", "--sensor", "wv3", "--tile", "128", "--overlap", "16"]


def _pair(folder, seed, h, w, ms_name="ms.tif", pan_name="pan.tif"):
    _, ms, pan = scene(seed=seed, bands=4, h=h, w=w)
    a, b = write_pair(folder, ms, pan)
    return a.rename(a.with_name(ms_name)), b.rename(b.with_name(pan_name))


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.crs, ds.descriptions, ds.nodata, ds.tags()


def _same_as_single(out, reference):
    """Pixels, georeferencing, band names, nodata and provenance tags of a single run."""
    a, b = _read(out), _read(reference)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:5] == b[1:5]
    tags = {k: v for k, v in a[5].items() if k != "SUMDUN_JOB"}
    assert tags == b[5]
    assert a[5]["SUMDUN_JOB"]


# ------------------------------------------------------------------------------- manifests

def test_csv_manifest_paths_relative_to_it(tmp_path):
    (tmp_path / "m.csv").write_text("id,ms,pan,sensor,method,ratio\n"
                                    "a,x/ms.tif,x/pan.tif,WorldView-3,bt-h,4\n"
                                    ",/abs/ms.tif,/abs/pan.tif,,,\n")
    a, b = read_manifest(tmp_path / "m.csv")
    assert (a.id, a.ms, a.pan, a.sensor, a.method, a.ratio) == (
        "a", str(tmp_path / "x/ms.tif"), str(tmp_path / "x/pan.tif"), "WorldView-3", "bt-h", 4)
    assert (b.id, b.ms, b.sensor, b.method, b.ratio) == ("ms", "/abs/ms.tif", None, None, None)


def test_yaml_manifest_defaults_and_options(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "defaults: {sensor: wv2, options: {block: 64}}\n"
        "scenes:\n  - {ms: a.tif, pan: ap.tif}\n"
        "  - {ms: b.tif, pan: bp.tif, sensor: wv3, options: {block: 32}}\n")
    a, b = read_manifest(tmp_path / "m.yaml")
    assert (a.sensor, a.options, b.sensor, b.options) == ("wv2", {"block": 64}, "wv3",
                                                          {"block": 32})
    assert a.pan == str(tmp_path / "ap.tif")


def test_folder_manifest_pairs_by_name_and_by_folder(tmp_path):
    for name in ("city_MS.tif", "city_PAN.tif", "MUL_img1.tif", "PAN_img1.tif",
                 "MUL_img2.tif", "PAN_img3.tif", "readme.txt", ".hidden/x_MS.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "pairmax" / "RR").mkdir(parents=True)  # PAirMax: MS_LR.tif + PAN.tif
    (tmp_path / "pairmax" / "RR" / "MS_LR.tif").write_bytes(b"")
    (tmp_path / "pairmax" / "RR" / "PAN.tif").write_bytes(b"")
    scenes = {s.id: s for s in read_manifest(tmp_path)}
    assert scenes["city"].ms.endswith("city_MS.tif") and scenes["city"].pan.endswith(
        "city_PAN.tif")
    assert scenes["img1"].ms.endswith("MUL_img1.tif") and scenes["img1"].pan.endswith(
        "PAN_img1.tif")
    assert scenes["pairmax_RR"].ms.endswith("MS_LR.tif")
    orphans = {s.id: s.problem for s in scenes.values() if s.problem}
    assert set(orphans) == {"MUL_img2", "PAN_img3"}  # reported, not dropped
    assert "no PAN file pairs" in orphans["MUL_img2"]
    assert not any(".hidden" in s.ms for s in scenes.values())


def test_stac_manifest(tmp_path):
    items = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "wv3-1", "properties": {"constellation": "WorldView-3"},
         "assets": {"pan": {"href": "p1.tif"}, "ms": {"href": "file:///data/m1.tif"}}},
        {"type": "Feature", "id": "geo-2", "properties": {"platform": "unknown-sat"},
         "assets": {"a": {"href": "m2.tif", "eo:bands": [{"name": "b"}, {"name": "g"}]},
                    "b": {"href": "p2.tif", "eo:bands": [{"common_name": "pan"}]}}},
        {"type": "Feature", "id": "no-pan", "assets": {"ms": {"href": "m3.tif"}}}]}
    (tmp_path / "items.json").write_text(json.dumps(items))
    a, b, c = read_manifest(tmp_path / "items.json")
    assert (a.ms, a.pan, a.sensor) == ("/data/m1.tif", str(tmp_path / "p1.tif"), "wv3")
    assert (b.ms, b.pan, b.sensor) == (str(tmp_path / "m2.tif"), str(tmp_path / "p2.tif"),
                                       None)
    assert "no PAN asset" in c.problem and "--pan-asset" in c.problem


@pytest.mark.parametrize("text, suffix, match", [
    ("ms,file\na,b\n", ".csv", "needs columns ms and pan"),
    ("ms,pan,colour\na,b,c\n", ".csv", "unknown field.*colour"),
    ("- {ms: a}\n", ".yaml", "needs both ms and pan"),
    ("ms,pan,ratio\na,b,four\n", ".csv", "ratio must be an integer"),
    ("{}", ".txt", "cannot tell the manifest type"),
    ("ms,pan\n", ".csv", "lists no scene"),
])
def test_bad_manifest_is_a_usage_error(tmp_path, text, suffix, match):
    p = tmp_path / f"m{suffix}"
    p.write_text(text)
    with pytest.raises(UsageError, match=match):
        read_manifest(p)


# ----------------------------------------------------------------------------- strips

def test_strips_joined_equal_the_whole_scene(tmp_path):
    ms, pan = _pair(tmp_path, 3, 180, 130)
    whole = fuse_geotiff(ms, pan, tmp_path / "whole.tif", progress=False, **ARGS)
    H, W, n = scene_grid(ms, pan, 4, 128, 16)
    assert (H, W, n) == (720, 520, 6)
    cuts = [0, 1, 4, 6]
    strips = [fuse_geotiff(ms, pan, tmp_path / f"s{a}.tif", progress=False, tile_rows=(a, b),
                           **ARGS) for a, b in zip(cuts, cuts[1:])]
    heights = [rasterio.open(s).height for s in strips]
    assert sum(heights) == H and heights[0] == 128  # a strip holds the rows it finishes
    joined = join_strips(strips, tmp_path / "joined.tif", tile=128)
    a, b = _read(joined), _read(whole)
    np.testing.assert_array_equal(a[0], b[0])  # strips 1:4 and 4:6 need the row before them
    assert a[1:] == b[1:]
    with pytest.raises(UsageError, match="outside"):
        fuse_geotiff(ms, pan, tmp_path / "x.tif", progress=False, tile_rows=(5, 7), **ARGS)


# ------------------------------------------------------------------------------ the batch

@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three good pairs (one of 6 tile rows, split), and a corrupt one, in one folder."""
    root = tmp_path_factory.mktemp("batch")
    src = root / "in"
    for k, (h, w) in enumerate([(180, 130), (40, 50), (64, 64)]):
        _pair(src / f"s{k}", k, h, w, f"city{k}_MS.tif", f"city{k}_PAN.tif")
    bad = src / "bad"
    bad.mkdir()
    good_ms = (src / "s1" / "city1_MS.tif").read_bytes()
    (bad / "bad_MS.tif").write_bytes(good_ms[: len(good_ms) // 2])  # truncated
    (bad / "bad_PAN.tif").write_bytes((src / "s1" / "city1_PAN.tif").read_bytes())
    refs = {}
    # what single-scene `sumdun fuse` writes, on purpose with 2 torch and 2 BLAS threads while
    # each Dask worker has 1: the outputs must be equal at any thread count (reproducible.py)
    torch = pytest.importorskip("torch")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = torch.get_num_threads()
    try:
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            for k in range(3):
                ref = root / f"ref{k}.tif"
                assert main(["fuse", str(src / f"s{k}" / f"city{k}_MS.tif"),
                             str(src / f"s{k}" / f"city{k}_PAN.tif"), str(ref), "-q",
                             "--threads", "2", *CLI_ARGS]) == 0
                refs[f"city{k}"] = ref
    finally:
        torch.set_num_threads(before)
    return src, refs


def _parts(folder):
    return [p for p in folder.rglob("*") if ".part" in p.name]


def test_batch_fuses_good_scenes_reports_bad_one_and_skips_done(tmp_path, client, scenes):
    src, refs = scenes
    out = tmp_path / "out"
    # one scene done beforehand by a batch of its own
    first = fuse_batch(src / "s2", out, client=client, progress=False, split_rows=2, **ARGS)
    assert first["totals"]["done"] == 1
    done_mtime = (out / "city2.tif").stat().st_mtime_ns

    rep = fuse_batch(src, out, client=client, progress=False, split_rows=2, **ARGS)
    status = {r["id"]: r for r in rep["scenes"]}
    assert {k: r["status"] for k, r in status.items()} == {
        "bad": "failed", "city0": "done", "city1": "done", "city2": "skipped"}
    assert "bad_MS.tif" in status["bad"]["error"] and "truncated" in status["bad"]["error"]
    assert (out / "city2.tif").stat().st_mtime_ns == done_mtime  # not fused again
    for sid, ref in refs.items():  # s0 ran as 3 strips of 2 tile rows on 2 workers
        _same_as_single(out / f"{sid}.tif", ref)
    saved = json.loads((out / "batch-report.json").read_text())
    assert saved["totals"] == rep["totals"] and saved["totals"]["failed"] == 1
    assert "| bad | failed |" in (out / "batch-report.md").read_text()
    assert not _parts(out) and not (out / ".sumdun-strips").exists()

    # the input of a done scene changes: its output is stale and fused again
    os.utime(src / "s1" / "city1_PAN.tif", ns=(time.time_ns(), time.time_ns()))
    rep = fuse_batch(src, out, client=client, progress=False, split_rows=2, **ARGS)
    assert {r["id"]: r["status"] for r in rep["scenes"]}["city1"] == "done"
    assert rep["totals"]["skipped"] == 2


def test_killed_worker_then_rerun_completes(tmp_path, client, scenes):
    src, refs = scenes
    out = tmp_path / "out"
    result = {}
    runner = threading.Thread(target=lambda: result.update(rep=fuse_batch(
        src, out, client=client, progress=False, split_rows=1, **ARGS)))
    runner.start()
    killed = None
    deadline = time.time() + 60
    while killed is None and time.time() < deadline and runner.is_alive():
        for p in _parts(out):  # a worker is writing: its pid is in the temporary name
            pid = int(p.name[p.name.index(".tif.") + 5:].split(".", 1)[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished meanwhile
                continue
            killed = pid
            break
        time.sleep(0.005)
    runner.join(120)
    assert killed is not None, "no worker was caught writing"
    rep = result["rep"]
    # the scheduler ran the killed worker's task again on a live (or restarted) worker
    assert {r["id"]: r["status"] for r in rep["scenes"]} == {
        "bad": "failed", "city0": "done", "city1": "done", "city2": "done"}
    for sid, ref in refs.items():
        _same_as_single(out / f"{sid}.tif", ref)
    again = fuse_batch(src, out, client=client, progress=False, split_rows=1, **ARGS)
    assert again["totals"]["skipped"] == 3 and again["totals"]["done"] == 0
    assert not _parts(out)  # the killed writer's temporary file is gone after the re-run


def test_cli_fuse_batch_on_its_own_local_cluster(tmp_path, scenes, capsys):
    src, refs = scenes
    csv = tmp_path / "m.csv"
    csv.write_text("id,ms,pan,sensor\n"
                   f"one,{src}/s1/city1_MS.tif,{src}/s1/city1_PAN.tif,wv3\n"
                   f"two,{src}/bad/bad_MS.tif,{src}/bad/bad_PAN.tif,nosuchsat\n")
    code = main(["fuse-batch", str(csv), str(tmp_path / "o"), "-q", "--workers", "2",
                 "--method", "bt-h", "--tile", "128", "--overlap", "16"])
    err = capsys.readouterr().err
    assert code == 1 and "1 scene(s) failed" in err and "run the same command" in err
    rep = json.loads((tmp_path / "o" / "batch-report.json").read_text())
    rows = {r["id"]: r for r in rep["scenes"]}
    assert rows["one"]["status"] == "done" and rows["two"]["status"] == "failed"
    assert "unknown sensor 'nosuchsat'" in rows["two"]["error"]
    _same_as_single(tmp_path / "o" / "one.tif", refs["city1"])


def test_manifest_outputs_stay_inside_outdir_unless_allowed(tmp_path, client, scenes):
    """A row whose ``out`` leaves OUTDIR (``../x.tif``, an absolute path) fails with a message
    saying so and writes nothing; ``allow_outside=True`` writes it where it says."""
    src, refs = scenes
    ms, pan = src / "s1" / "city1_MS.tif", src / "s1" / "city1_PAN.tif"
    outdir, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    csv = tmp_path / "m.csv"
    csv.write_text("id,ms,pan,out\n"
                   f"up,{ms},{pan},../up.tif\n"
                   f"abs,{ms},{pan},{elsewhere / 'abs.tif'}\n"
                   f"inside,{ms},{pan},./in.tif\n")
    rep = fuse_batch(csv, outdir, client=client, progress=False, **ARGS)
    rows = {r["id"]: r for r in rep["scenes"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "up": "failed", "abs": "failed", "inside": "done"}
    assert "outside the output folder" in rows["up"]["error"]
    assert "--allow-outside" in rows["abs"]["error"]
    assert not (tmp_path / "up.tif").exists() and not (elsewhere / "abs.tif").exists()
    rep = fuse_batch(csv, outdir, client=client, progress=False, allow_outside=True, **ARGS)
    assert {r["id"]: r["status"] for r in rep["scenes"]} == {
        "up": "done", "abs": "done", "inside": "skipped"}
    _same_as_single(elsewhere / "abs.tif", refs["city1"])


@pytest.mark.parametrize("argv, match", [
    (["--split-rows", "0"], "split_rows must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--tile", "100"], "tile must be a multiple"),
    (["-o", "sensor=wv3"], "use --sensor"),
])
def test_cli_fuse_batch_usage_errors(tmp_path, scenes, capsys, argv, match):
    src, _ = scenes
    code = main(["fuse-batch", str(src), str(tmp_path / "o"), *argv])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o" / "batch-report.json").exists()  # no work started


def test_cli_sends_work_to_an_existing_scheduler(tmp_path, client, scenes, capsys):
    src, refs = scenes
    code = main(["fuse-batch", str(src / "s2"), str(tmp_path / "o"), "--scheduler",
                 client.scheduler.address, "--json", *CLI_ARGS])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["totals"]["done"] == 1 and rep["totals"]["workers"] == 2
    _same_as_single(tmp_path / "o" / "city2.tif", refs["city2"])
    assert client.scheduler_info()["workers"]  # the cluster is left running
