"""Tiled GeoTIFF fusion (``sumdun fuse``): tiling, georeferencing, nodata, errors, atomicity."""
from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sumdun.cli import main  # noqa: E402
from sumdun.fusion import fuse  # noqa: E402
from sumdun.io import read_geotiff_pair  # noqa: E402
from sumdun.io.scene import SceneError  # noqa: E402
from sumdun.scene_fusion import fuse_geotiff  # noqa: E402
from sumdun.tiling import TileBlender, axis_tiles  # noqa: E402

from synthetic import scene, write_pair  # noqa: E402

RANGE = 2047.0


def _zones(tiles, margin):
    """Boolean mask ``(n,)``: within ``margin`` of an inner core boundary or a scene edge."""
    near = np.zeros(tiles.n, bool)
    for b in tiles.cores[1:-1]:
        near[max(0, b - margin): b + margin] = True
    near[:margin] = near[-margin:] = True
    return near


@pytest.mark.parametrize("n", [64, 700, 800, 1100, 1601, 5000])
def test_axis_tiles_partition(n):
    t = axis_tiles(n, 256, 32)
    w = np.zeros(n)
    written = np.zeros(n, int)
    for i in range(len(t)):
        a, b = t.read(i)
        w[a:b] += t.weights(i)
        s, e = t.write(i)
        written[s:e] += 1
        assert s % 256 == 0  # writes land on multiples of the tile (whole GeoTIFF blocks)
        assert t.read(i)[0] <= s and e <= t.read(i)[1]
    np.testing.assert_allclose(w, 1.0, atol=1e-6)  # feather weights: a partition of unity
    assert (written == 1).all()
    cores = np.diff(t.cores)
    assert cores.max() <= 1.5 * 256 + 32 and (len(t) == 1 or cores.min() >= 128)


def test_axis_tiles_rejects_wide_overlap():
    with pytest.raises(ValueError, match="quarter of the tile"):
        axis_tiles(1000, 128, 64)


def test_blender_reassembles_identical_tiles():
    rng = np.random.default_rng(0)
    img = rng.random((3, 900, 1300)).astype(np.float32)
    rows, cols = axis_tiles(900, 256, 32), axis_tiles(1300, 256, 32)
    b = TileBlender(rows, cols, 3)
    out = np.full_like(img, np.nan)
    for i, j in b.tiles():
        (r0, r1), (c0, c1) = rows.read(i), cols.read(j)
        (h0, h1, w0, w1), blk = b.add(i, j, img[:, r0:r1, c0:c1])
        assert np.isnan(out[:, h0:h1, w0:w1]).all()  # every pixel written once
        out[:, h0:h1, w0:w1] = blk
    np.testing.assert_allclose(out, img, atol=1e-6)


@pytest.fixture(scope="module")
def big_pair(tmp_path_factory):
    """A 4-band uint16 scene, PAN 1200 x 1000 (not a multiple of the tile)."""
    _, ms, pan = scene(seed=21, bands=4, h=300, w=250)
    folder = tmp_path_factory.mktemp("big")
    return write_pair(folder, ms, pan, dtype="uint16")


def test_tiled_equals_untiled_and_has_no_seams(tmp_path, big_pair):
    ms_p, pan_p = big_pair
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "exp.tif", method="exp", tile=256, overlap=32,
                       dtype="float32", progress=False)
    pair = read_geotiff_pair(ms_p, pan_p)
    ref = fuse(pair.ms.astype(np.float64), pair.pan.astype(np.float64), method="exp")
    with rasterio.open(out) as ds:
        tiled = ds.read().astype(np.float64)
    rows, cols = axis_tiles(1200, 256, 32), axis_tiles(1000, 256, 32)
    far = ~_zones(rows, 64)[:, None] & ~_zones(cols, 64)[None, :]
    diff = np.abs(tiled - ref)
    assert diff[:, far].max() <= 1e-4 * RANGE
    # inside the blend zones (away from the scene edges) the feathered result stays close
    inner = np.zeros((1200, 1000), bool)
    inner[64:-64, 64:-64] = True
    assert diff[:, inner].max() < 0.01 * RANGE
    # no seam: the jump across a core boundary is no larger than the untiled image's
    for b in rows.cores[1:-1]:
        jump_t = np.abs(tiled[:, b] - tiled[:, b - 1])[:, 64:-64].mean()
        jump_r = np.abs(ref[:, b] - ref[:, b - 1])[:, 64:-64].mean()
        assert jump_t < 1.05 * jump_r + 1e-3


def test_georeferencing_dtype_and_names(tmp_path, big_pair):
    ms_p, pan_p = big_pair
    with rasterio.open(ms_p, "r+") as ds:
        for k, name in enumerate(["blue", "green", "red", "nir"], start=1):
            ds.set_band_description(k, name)
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "o.tif", method="mtf-glp", tile=512,
                       overlap=32, progress=False)
    with rasterio.open(out) as o, rasterio.open(pan_p) as p, rasterio.open(ms_p) as m:
        assert o.crs == p.crs and o.transform == p.transform
        assert (o.width, o.height) == (p.width, p.height)
        assert o.count == m.count and o.dtypes[0] == "uint16"
        assert o.descriptions == ("blue", "green", "red", "nir")
        assert o.profile["tiled"] and o.profile["compress"] == "deflate"


def test_nodata_propagated(tmp_path):
    _, ms, pan = scene(seed=5, bands=4, h=100, w=90)
    ms = np.rint(ms)
    pan = np.rint(pan)
    ms[:, :10, :] = 0          # MS nodata rows (MS pixels 0-9 -> PAN rows 0-39)
    pan[:, 200:220, 100:150] = 0  # a PAN nodata patch
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan, dtype="uint16", nodata=0)
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "o.tif", method="bt-h", tile=128, overlap=16,
                       progress=False)
    with rasterio.open(out) as o:
        a = o.read()
        assert o.nodata == 0
    invalid = np.zeros(a.shape[1:], bool)
    invalid[:40] = True
    invalid[200:220, 100:150] = True
    assert (a[:, invalid] == 0).all()
    assert (a[:, ~invalid] > 0).all()  # a valid pixel never reads as nodata


def test_fully_nodata_tiles_are_skipped(tmp_path):
    _, ms, pan = scene(seed=6, bands=4, h=96, w=96)
    ms = np.rint(ms)
    ms[:, :, 48:] = 0  # the right half is nodata: those tiles are constant, not fusable
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan, dtype="uint16", nodata=0)
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "o.tif", method="exp", tile=128, overlap=16,
                       progress=False)
    with rasterio.open(out) as o:
        a = o.read()
    assert (a[:, :, 192:] == 0).all() and (a[:, :, :192] > 0).all()


def test_errors_crs_ratio_overlap(tmp_path):
    _, ms, pan = scene(seed=7, bands=4, h=40, w=40)
    p = write_pair(tmp_path / "crs", ms, pan, pan_crs="EPSG:32614")
    with pytest.raises(SceneError, match="CRS differ"):
        fuse_geotiff(*p, tmp_path / "o.tif", method="exp", progress=False)
    p = write_pair(tmp_path / "ratio", ms, pan, pan_res=4.0 / 3.5)
    with pytest.raises(SceneError, match="ratio is 3.5"):
        fuse_geotiff(*p, tmp_path / "o.tif", method="exp", progress=False)
    # PAN shifted by half the scene: only part of the ground is shared
    p = write_pair(tmp_path / "part", ms, pan, pan_origin=(500000.0 + 80.0, 4400000.0))
    with pytest.raises(SceneError, match="only partly overlap.*--crop-to-overlap"):
        fuse_geotiff(*p, tmp_path / "o.tif", method="exp", progress=False)
    out = fuse_geotiff(*p, tmp_path / "o.tif", method="exp", progress=False,
                       crop_to_overlap=True)
    with rasterio.open(out) as o:
        assert o.width == 160 - 80 and o.transform.c == 500000.0 + 80.0
    with pytest.raises(ValueError, match="multiple of 16"):
        fuse_geotiff(*p, tmp_path / "o2.tif", method="exp", tile=100, progress=False)
    assert not (tmp_path / "o2.tif").exists()


def test_truncated_file_is_clear_error_and_leaves_nothing(tmp_path):
    _, ms, pan = scene(seed=8, bands=4, h=128, w=128)
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan)
    data = pan_p.read_bytes()
    pan_p.write_bytes(data[: len(data) // 2])  # header intact, the lower half missing
    out = tmp_path / "o.tif"
    with pytest.raises(SceneError, match="truncated or corrupt"):
        fuse_geotiff(ms_p, pan_p, out, method="exp", tile=128, overlap=16, progress=False)
    assert not out.exists()
    assert [f.name for f in tmp_path.iterdir()] == ["in"]


def test_interrupt_leaves_no_output_and_keeps_old_file(tmp_path, big_pair, monkeypatch):
    import sumdun.fusion as fusion

    out = tmp_path / "o.tif"
    out.write_bytes(b"previous result")
    calls = {"n": 0}
    real = fusion.fuse

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(fusion, "fuse", flaky)
    with pytest.raises(KeyboardInterrupt):
        fuse_geotiff(*big_pair, out, method="exp", tile=256, overlap=32, progress=False)
    assert out.read_bytes() == b"previous result"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["o.tif"]


def test_cog_output(tmp_path, big_pair):
    out = fuse_geotiff(*big_pair, tmp_path / "cog.tif", method="exp", tile=256, overlap=32,
                       cog=True, progress=False)
    with rasterio.open(out) as o:
        assert o.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert o.overviews(1)  # overviews built
    assert sorted(f.name for f in tmp_path.iterdir()) == ["cog.tif"]


def test_cli_fuse_with_method_option(tmp_path, big_pair, capsys):
    out = tmp_path / "bdsd.tif"
    rc = main(["fuse", str(big_pair[0]), str(big_pair[1]), str(out), "--method", "bdsd",
               "--tile", "512", "-o", "block=null", "-q"])  # YAML null: one global block
    assert rc == 0 and out.exists()
    # a block that does not divide the edge tile: a usage error before any work, naming the
    # tile and the rule
    rc = main(["fuse", str(big_pair[0]), str(big_pair[1]), str(tmp_path / "b.tif"),
               "--method", "bdsd", "-o", "block=64", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "divide the PAN size" in err and "tile of this scene" in err
    assert not (tmp_path / "b.tif").exists()
    rc = main(["fuse", str(big_pair[0]), str(big_pair[1]), str(out), "--method", "bdsd",
               "-o", "nonsense", "-q"])
    assert rc == 2 and "not KEY=VALUE" in capsys.readouterr().err


def test_sumdun_tiles_agree_with_untiled(tmp_path):
    """SUM-DUN sees whole tiles (channel attention, band weights), so tiling changes it
    slightly (measured 0.5 DN mean on this crop); a tile misplaced by one PAN pixel would
    change it by ~10 DN. Real WorldView-3 pixels, read from the installed dgsamples package
    into a temporary folder (never committed)."""
    from sumdun.fusion import list_methods
    from sumdun.io import sample_paths

    if "sumdun" not in list_methods():
        pytest.fail("the shipped sumdun weights are missing from the package")
    ms_src, pan_src = sample_paths("wv3")
    with rasterio.open(ms_src) as m, rasterio.open(pan_src) as p:
        ms = m.read(window=((400, 528), (300, 428))).astype(np.float64)
        pan = p.read(window=((1600, 2112), (1200, 1712))).astype(np.float64)
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan)
    text = "a suburban scene with houses, roads and vegetation"
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "t.tif", method="sumdun", sensor="wv3",
                       tile=256, overlap=32, prompt=text, dtype="float32", progress=False)
    ref = fuse(ms, pan, method="sumdun", sensor="wv3", prompt=text)
    with rasterio.open(out) as o:
        tiled = o.read().astype(np.float64)
    diff = np.abs(tiled - ref).mean()
    assert diff < 1e-3 * RANGE
    shifted = np.abs(ref[:, 1:] - tiled[:, :-1]).mean()
    assert shifted > 5 * diff


def test_scene_prompt_reads_gsd_and_acquisition_geometry(tmp_path):
    """SUM-DUN's scene prompt names the ground sampling distance (from the georeferencing) and
    the sun elevation and off-nadir angle, from a DigitalGlobe .IMD beside the MS file or from
    GeoTIFF tags; the output's SUMDUN_PROMPT tag records it."""
    from sumdun.io.extra import geometry_from_tags, read_imd

    _, ms, pan = scene(seed=6, bands=4, h=64, w=64)
    ms_p, pan_p = write_pair(tmp_path / "a", ms, pan, ms_res=2.0)  # PAN 0.5 m
    ms_p.with_suffix(".IMD").write_text(
        'version = "28.3";\nBEGIN_GROUP = IMAGE_1\n\tmeanSunAz = 169.2;\n'
        "\tmeanSunEl =  19.1;\n\tmeanOffNadirViewAngle =  12.7;\nEND_GROUP = IMAGE_1\n")
    assert read_imd(ms_p.with_suffix(".IMD")) == {"sun_elevation": 19.1, "off_nadir": 12.7}
    out = fuse_geotiff(ms_p, pan_p, tmp_path / "o.tif", method="sumdun", sensor="qb",
                       progress=False)
    with rasterio.open(out) as ds:
        text = ds.tags()["SUMDUN_PROMPT"]
    assert "at 0.5 m" in text and "low sun (19 deg elevation)" in text
    assert "13 deg off nadir" in text
    assert geometry_from_tags({"SUN_ELEVATION": "55.5", "offNadirAngle": "7"}) == \
        {"sun_elevation": 55.5, "off_nadir": 7.0}
    b = write_pair(tmp_path / "b", ms, pan, ms_res=2.0)
    with rasterio.open(b[0], "r+") as ds:
        ds.update_tags(SUN_ELEVATION="64", OFF_NADIR="3")
    out = fuse_geotiff(*b, tmp_path / "p.tif", method="sumdun", sensor="qb", progress=False)
    with rasterio.open(out) as ds:
        text = ds.tags()["SUMDUN_PROMPT"]
    assert "high sun (64 deg elevation)" in text and "3 deg off nadir" in text


def test_sumdun_reads_the_bit_depth_from_nbits(tmp_path):
    """A uint16 product declaring GDAL's NBITS=12 is fused with bits=12 (the range of its stats
    prompt and warnings), recorded in the provenance; without NBITS the sensor's range applies."""
    import json

    pytest.importorskip("safetensors")
    from sumdun.fusion import list_methods

    if "sumdun" not in list_methods():
        pytest.skip("no shipped weights")
    _, ms, pan = scene(seed=5, bands=4, h=32, w=32, bits=12)
    for nbits in (12, None):
        folder = tmp_path / f"n{nbits}"
        ms_p, pan_p = write_pair(folder, ms, pan)
        if nbits:
            for path, arr in ((ms_p, ms), (pan_p, pan)):
                with rasterio.open(path) as src:
                    profile = src.profile
                with rasterio.open(path, "w", **profile, NBITS=nbits) as dst:
                    dst.write(np.rint(arr).astype("uint16"))
            with rasterio.open(ms_p) as src:
                assert src.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "12"
        out = fuse_geotiff(ms_p, pan_p, folder / "o.tif", method="sumdun", sensor="qb",
                           progress=False)
        with rasterio.open(out) as ds:
            options = json.loads(ds.tags()["SUMDUN_OPTIONS"])
        assert options.get("bits") == nbits


def test_cli_bt_h_runs_without_torch_and_equals_the_torch_implementation(tmp_path, big_pair,
                                                                         monkeypatch):
    """``sumdun fuse --method bt-h`` never imports torch (numpy BT-H), and its tiles equal the
    torch implementation's within one digital number."""
    import subprocess
    import sys

    import torch

    import sumdun.fusion as fusion

    out = tmp_path / "cli.tif"
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "sumdun.cli", "fuse",
                          *map(str, big_pair), str(out), "--method", "bt-h", "--tile", "256",
                          "--overlap", "32", "-q"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in run.stderr.splitlines()
                if ln.startswith("import time:")}
    assert "sumdun.methods.classical._brovey_numpy" in imported
    assert "torch" not in imported and "scipy" not in imported
    real = fusion.fuse
    monkeypatch.setattr(fusion, "fuse", lambda ms, pan, **k: real(
        torch.from_numpy(ms), torch.from_numpy(pan), **k).numpy())
    ref = fuse_geotiff(*big_pair, tmp_path / "torch.tif", method="bt-h", tile=256, overlap=32,
                       progress=False)
    with rasterio.open(out) as a, rasterio.open(ref) as b:
        diff = np.abs(a.read().astype(np.int64) - b.read().astype(np.int64))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_background_writer_order_errors_and_abort():
    """Blocks are written in order; a failed write is raised in the caller's thread and nothing
    after it is written; leaving on an error drops what is still queued."""
    import time

    from sumdun.io.writer import BackgroundWriter

    class Dst:
        def __init__(self, fail_at=None, delay=0.0):
            self.done, self.fail_at, self.delay = [], fail_at, delay

        def write(self, block, window):
            time.sleep(self.delay)
            if window == self.fail_at:
                raise OSError(28, "No space left on device")
            self.done.append(window)

    dst = Dst()
    with BackgroundWriter(dst) as w:
        for k in range(6):
            w.write(None, k)
    assert dst.done == list(range(6))
    dst = Dst(fail_at=2)
    with pytest.raises(OSError, match="No space"):
        with BackgroundWriter(dst, pending=8) as w:
            for k in range(6):
                w.write(None, k)
    assert dst.done == [0, 1]
    dst = Dst(delay=0.3)
    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter(dst, pending=8) as w:
            for k in range(4):
                w.write(None, k)
            raise KeyboardInterrupt       # a write under way finishes, the rest are dropped
    assert dst.done in ([], [0])
