import json
import struct

import numpy as np
import pytest
import torch

from sumdun.degrade import interp23tap
from sumdun.fusion import fuse, list_methods

from synthetic import scene


def test_registry_lists_methods_with_descriptions():
    methods = list_methods()
    assert "exp" in methods and "23-tap" in methods["exp"]
    assert {"bt-h", "mtf-glp", "mtf-glp-hpm"} <= set(methods)


def test_exp_is_interp23tap_in_the_input_kind():
    _, ms, pan = scene(seed=1, bands=4, h=8, w=8)
    out = fuse(ms, pan, method="exp", sensor="qb")
    assert isinstance(out, np.ndarray) and out.shape == (4, 32, 32)
    np.testing.assert_allclose(out, interp23tap(ms))
    t = fuse(torch.from_numpy(np.stack([ms, ms])), torch.from_numpy(np.stack([pan, pan])), "EXP")
    assert isinstance(t, torch.Tensor) and t.shape == (2, 4, 32, 32)


def test_fuse_bad_inputs():
    _, ms, pan = scene(seed=2, bands=4, h=8, w=8)
    with pytest.raises(KeyError, match="available: .*exp"):
        fuse(ms, pan, method="nope")
    with pytest.raises(ValueError, match="4x the size of ms"):
        fuse(ms, pan[:, :30], method="exp")
    with pytest.raises(ValueError, match="ratio must be an integer"):
        fuse(ms, pan, method="exp", ratio=1)
    bad = ms.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fuse(bad, pan, method="exp")
    with pytest.raises(ValueError, match="QuickBird images have 4 bands"):
        fuse(np.concatenate([ms, ms]), pan, method="exp", sensor="qb")


def test_valid_core_and_crop_keep_georeferencing():
    pytest.importorskip("rasterio")
    from sumdun.io import load_sample

    p = load_sample("wv2")
    core = p.valid_core(multiple=8)
    assert core.ms_valid.all() and core.pan_valid.all()
    assert core.ms.shape[1] % 8 == 0 and core.pan.shape[1] == 4 * core.ms.shape[1]
    row, col = core.meta["crop"][:2]
    assert core.pan_transform.c == pytest.approx(p.pan_transform.c + 4 * col * p.pan_transform.a)
    assert core.ms_transform.f == pytest.approx(p.ms_transform.f + row * p.ms_transform.e)
    np.testing.assert_array_equal(core.pan, p.pan[:, 4 * row:4 * row + core.pan.shape[1],
                                                  4 * col:4 * col + core.pan.shape[2]])
    with pytest.raises(ValueError, match="outside the MS image"):
        p.crop(0, 0, 1000, 10)


@pytest.mark.heavy
def test_demo_writes_geotiff_png_and_metrics(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sumdun.demo import DEMO_METHODS, run_demo

    out = run_demo(tmp_path, sample="wv2", quicklook_px=256)
    tif = tmp_path / "wv2_bt-h.tif"
    with rasterio.open(tif) as ds:
        assert ds.count == 8 and ds.dtypes[0] == "uint16" and ds.crs.to_epsg() == 32613
        assert ds.res == (0.5, 0.5) and ds.nodata == 0
        assert ds.descriptions[4] == "red"
        data = ds.read(5)
        assert 100 < np.median(data) < 2047
    png = (tmp_path / "wv2_quicklook.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    rows = {r["method"]: r for r in json.loads((tmp_path / "metrics.json").read_text())["rows"]}
    assert list(rows) == list(DEMO_METHODS)
    n_panels = len(rows) + 2  # MS, each method, PAN
    assert (w, h) == (n_panels * 256 + (n_panels - 1) * 8, 256)
    for r in rows.values():
        assert 0.5 < r["Q2n"] < 1 and 0 < r["SAM"] < 10 and 0 < r["D_S"] < 0.5
        assert r["HQNR"] == pytest.approx((1 - r["D_lambda"]) * (1 - r["D_S"]))
    # PAN detail makes the pansharpened images better than the interpolated MS at reduced res.
    assert rows["bt-h"]["Q2n"] > rows["exp"]["Q2n"] and rows["mtf-glp-hpm"]["Q2n"] > rows["exp"]["Q2n"]
    assert "| exp |" in (tmp_path / "metrics.md").read_text()
    assert out["png"].name == "wv2_quicklook.png"
