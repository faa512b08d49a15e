import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")  # noqa: F841  (installed by `make test`)
import h5py  # noqa: E402
import scipy.io  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from sumdun.io import (SceneError, pan_window_to_ms_window, read_geotiff_pair, read_h5,  # noqa: E402
                       read_h5_pair, read_mat, read_mat_pair, read_pair, write_geotiff, write_h5)

from synthetic import scene, write_pair  # noqa: E402


@pytest.fixture
def pair_files(tmp_path):
    _, ms, pan = scene(seed=1, bands=4, h=16, w=16)
    return write_pair(tmp_path / "s", ms, pan), ms, pan


def test_read_geotiff_pair(pair_files):
    (ms_p, pan_p), ms, pan = pair_files
    p = read_geotiff_pair(ms_p, pan_p, sensor="qb")
    assert p.ms.shape == (4, 16, 16) and p.pan.shape == (1, 64, 64)
    np.testing.assert_array_equal(p.ms, np.rint(ms).astype("uint16"))
    with rasterio.open(pan_p) as ds:
        assert p.pan_transform == ds.transform and p.crs == ds.crs
    with rasterio.open(ms_p) as ds:
        assert p.ms_transform == ds.transform
    assert p.sensor.key == "qb" and p.band_names == ("blue", "green", "red", "nir")
    assert p.ms_nodata is None and p.ms_valid.all()
    assert "QuickBird" in p.describe()


def test_partial_overlap_is_cropped_to_whole_ms_pixels(tmp_path):
    _, ms, pan = scene(seed=2, bands=4, h=16, w=16)
    # PAN shifted by 3 MS pixels east and 2 south (12 m, 8 m), so only 13 x 14 MS pixels overlap
    ms_p, pan_p = write_pair(tmp_path, ms, pan, pan_origin=(500012.0, 4399992.0))
    p = read_geotiff_pair(ms_p, pan_p)
    assert p.ms.shape == (4, 14, 13) and p.pan.shape == (1, 56, 52)
    np.testing.assert_array_equal(p.ms, np.rint(ms[:, 2:, 3:]).astype("uint16"))
    assert p.pan_transform.c == 500012.0 and p.ms_transform.c == 500012.0
    assert p.pan_transform.f == p.ms_transform.f == 4399992.0


def test_landsat_grid_snaps_to_the_toolbox_phase(tmp_path):
    """Landsat's PAN grid starts half a PAN pixel west and north of the MS's, so an MS pixel's
    centre is a PAN pixel's centre. The toolbox's phase (decimate keeps PAN pixel 2i + 1 at
    ratio 2) matches it only when the PAN window starts on the PAN pixel just west/north of the
    MS edge; the next one would be a whole PAN pixel off. Here the MS window starts 2.5 PAN
    pixels into the PAN: it must read from PAN pixel 2, not 3."""
    rng = np.random.default_rng(4)
    ms = rng.uniform(100, 2000, (4, 8, 8))
    pan = rng.uniform(100, 2000, (1, 21, 21))  # 2 x 8 + 5: covers the MS with room
    # MS pixel 4 m, PAN 2 m; the PAN starts 1 MS pixel + half a PAN pixel (5 m) west and north
    ms_p, pan_p = write_pair(tmp_path, ms, pan, ratio=2, pan_origin=(500000.0 - 5,
                                                                   4400000.0 + 5))
    p = read_geotiff_pair(ms_p, pan_p, ratio=2)
    assert p.ms.shape == (4, 8, 8) and p.pan.shape == (1, 16, 16)
    np.testing.assert_array_equal(p.pan, np.rint(pan[:, 2:18, 2:18]).astype("uint16"))


def test_pan_window_to_ms_window(pair_files):
    (ms_p, pan_p), _, _ = pair_files
    with rasterio.open(ms_p) as m, rasterio.open(pan_p) as p:
        w = pan_window_to_ms_window(Window(8, 12, 16, 20), p.transform, m.transform)
        assert (w.col_off, w.row_off, w.width, w.height) == pytest.approx((2, 3, 4, 5))
        w = pan_window_to_ms_window(Window(2, 0, 4, 4), p.transform, m.transform)
        assert (w.col_off, w.width) == pytest.approx((0.5, 1.0))  # not on MS pixel edges


def test_nodata_reported(tmp_path):
    _, ms, pan = scene(seed=3, bands=4, h=8, w=8)
    ms[:, 0, :] = 0
    ms_p, pan_p = write_pair(tmp_path, ms, pan, nodata=0)
    p = read_geotiff_pair(ms_p, pan_p)
    assert p.ms_nodata == 0 and p.pan_nodata == 0
    assert not p.ms_valid[0].any() and p.ms_valid[1:].all()
    assert "nodata MS 0" in p.describe()


def test_errors_missing_and_corrupt(tmp_path, pair_files):
    (ms_p, pan_p), _, _ = pair_files
    with pytest.raises(FileNotFoundError, match="MS file not found"):
        read_geotiff_pair(tmp_path / "nope.tif", pan_p)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 definitely not a tiff" * 10)
    with pytest.raises(SceneError, match="complete GeoTIFF"):
        read_geotiff_pair(ms_p, bad)
    trunc = tmp_path / "trunc.tif"
    trunc.write_bytes(ms_p.read_bytes()[:600])
    with pytest.raises(SceneError, match="truncated or corrupt|complete GeoTIFF"):
        read_geotiff_pair(trunc, pan_p)


def test_error_crs_mismatch(tmp_path):
    _, ms, pan = scene(seed=4, bands=4, h=8, w=8)
    ms_p, pan_p = write_pair(tmp_path, ms, pan, pan_crs="EPSG:32614")
    with pytest.raises(SceneError, match="CRS differ.*reproject"):
        read_geotiff_pair(ms_p, pan_p)


def test_error_wrong_ratio(tmp_path):
    _, ms, pan = scene(seed=4, bands=4, h=8, w=8)
    ms_p, pan_p = write_pair(tmp_path, ms, pan, pan_res=2.0)
    with pytest.raises(SceneError, match="ratio is 2 x 2.*expected the integer 4"):
        read_geotiff_pair(ms_p, pan_p)
    ms_p, pan_p = write_pair(tmp_path / "b", ms, pan, pan_res=4 / 3.5)
    with pytest.raises(SceneError, match="expected the integer 4"):
        read_geotiff_pair(ms_p, pan_p)


def test_error_band_count_and_swapped(tmp_path):
    _, ms, pan = scene(seed=4, bands=3, h=8, w=8)
    ms_p, pan_p = write_pair(tmp_path, ms, pan)
    with pytest.raises(SceneError, match="QuickBird images have 4 bands.*got 3"):
        read_geotiff_pair(ms_p, pan_p, sensor="qb")
    with pytest.raises(SceneError, match="has 3 bands, expected 1"):
        read_geotiff_pair(pan_p, ms_p)


def test_error_no_overlap(tmp_path):
    _, ms, pan = scene(seed=4, bands=4, h=8, w=8)
    ms_p, pan_p = write_pair(tmp_path, ms, pan, pan_origin=(600000.0, 4400000.0))
    with pytest.raises(SceneError, match="do not overlap"):
        read_geotiff_pair(ms_p, pan_p)


def test_write_geotiff_atomic_keeps_existing_file(tmp_path, pair_files, monkeypatch):
    (ms_p, _), _, _ = pair_files
    out = tmp_path / "out.tif"
    a = np.arange(2 * 300 * 300, dtype="float32").reshape(2, 300, 300)
    with rasterio.open(ms_p) as ds:
        write_geotiff(out, a, crs=ds.crs, transform=ds.transform, nodata=-1,
                      band_names=["x", "y"])
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), a)
        assert ds.descriptions == ("x", "y") and ds.nodata == -1 and ds.profile["tiled"]
    before = out.read_bytes()
    with pytest.raises(Exception):
        write_geotiff(out, np.zeros((1, 4, 4), dtype=object))
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_h5_roundtrip_and_pair(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"gt": rng.uniform(0, 2047, (3, 8, 32, 32)), "ms": rng.uniform(0, 2047, (3, 8, 8, 8)),
              "lms": rng.uniform(0, 2047, (3, 8, 32, 32)),
              "pan": rng.uniform(0, 2047, (3, 1, 32, 32))}
    path = write_h5(tmp_path / "t.h5", arrays, attrs={"sensor": "wv3", "bits": 11})
    d = read_h5(path)
    for k, v in arrays.items():
        np.testing.assert_array_equal(d[k], v)
    assert d["attrs"]["sensor"] == "wv3" and d["attrs"]["bits"] == 11
    p = read_h5_pair(path, index=2)
    assert p.sensor.key == "wv3" and p.ms.shape == (8, 8, 8)
    np.testing.assert_array_equal(p.meta["gt"], arrays["gt"][2])
    assert read_pair(path, index=1).pan.shape == (1, 32, 32)


def test_h5_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_h5(tmp_path / "none.h5")
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(SceneError, match="HDF5"):
        read_h5(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["images"] = np.zeros((1, 1, 2, 2))
    with pytest.raises(SceneError, match="none of"):
        read_h5(tmp_path / "y.h5")
    with pytest.raises(ValueError, match="N x C x H x W"):
        write_h5(tmp_path / "z.h5", {"ms": np.zeros((4, 4))})


def test_mat_v5_and_v73(tmp_path):
    rng = np.random.default_rng(1)
    ms = rng.uniform(0, 2047, (8, 8, 4))      # H x W x C as MATLAB stores it
    pan = rng.uniform(0, 2047, (32, 32))
    gt = rng.uniform(0, 2047, (32, 32, 4))
    scipy.io.savemat(tmp_path / "a.mat", {"I_MS_LR": ms, "I_PAN": pan, "I_GT": gt})
    d = read_mat(tmp_path / "a.mat")
    np.testing.assert_array_equal(d["ms"], np.moveaxis(ms, -1, 0))
    np.testing.assert_array_equal(d["pan"][0], pan)
    p = read_mat_pair(tmp_path / "a.mat", sensor="qb")
    assert p.ms.shape == (4, 8, 8) and p.pan.shape == (1, 32, 32) and p.meta["gt"].shape == (4, 32, 32)
    # v7.3 = HDF5 with MATLAB's column-major layout (arrays appear transposed)
    with h5py.File(tmp_path / "b.mat", "w") as f:
        f["I_MS_LR"] = ms.T
        f["I_PAN"] = pan.T
    d = read_mat(tmp_path / "b.mat")
    np.testing.assert_array_equal(d["ms"], np.moveaxis(ms, -1, 0))
    assert read_pair(tmp_path / "b.mat").ms.shape == (4, 8, 8)


def test_mat_errors(tmp_path):
    scipy.io.savemat(tmp_path / "c.mat", {"I_MS_LR": np.zeros((8, 8, 4)), "I_PAN": np.zeros((20, 20))})
    with pytest.raises(SceneError, match="is not 4x"):
        read_mat_pair(tmp_path / "c.mat")
    scipy.io.savemat(tmp_path / "d.mat", {"I_MS_LR": np.zeros((8, 8, 4))})
    with pytest.raises(SceneError, match="no I_PAN"):
        read_mat_pair(tmp_path / "d.mat")
    (tmp_path / "e.mat").write_bytes(b"MATLAB 5.0 MAT-file garbage")
    with pytest.raises(SceneError, match="MATLAB file"):
        read_mat(tmp_path / "e.mat")


def test_read_pair_dispatch_errors(tmp_path, pair_files):
    (ms_p, pan_p), _, _ = pair_files
    assert read_pair(ms_p, pan_p).ms.shape == (4, 16, 16)
    with pytest.raises(ValueError, match="needs its PAN"):
        read_pair(ms_p)
    with pytest.raises(ValueError, match="unsupported file type"):
        read_pair(tmp_path / "x.jp2", pan_p)
