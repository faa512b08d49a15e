"""Both real dgsamples scenes (installed from PyPI; never committed)."""
import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sumdun.degrade import interp23tap, wald  # noqa: E402
from sumdun.io import list_samples, load_sample, read_pair, sample_paths  # noqa: E402

SHAPES = {"wv2": ((8, 501, 500), (1, 2004, 2000)), "wv3": ((8, 835, 835), (1, 3340, 3340))}


@pytest.fixture(scope="module", params=["wv2", "wv3"])
def sample(request):
    return request.param, load_sample(request.param)


def test_list_samples():
    assert list_samples() == ["wv2", "wv3"]
    with pytest.raises(KeyError, match="available: wv2, wv3"):
        sample_paths("qb")


def test_scene_metadata(sample):
    name, p = sample
    assert (p.ms.shape, p.pan.shape) == SHAPES[name]
    assert p.ms.dtype == np.uint16 and p.ms.max() <= 2047 and p.pan.max() <= 2047
    assert p.sensor.key == name and p.sensor.bits == 11 and p.ratio == 4
    assert p.crs.to_epsg() == 32613
    assert p.ms_nodata == 0 and p.pan_nodata == 0
    assert 0.99 < p.ms_valid.mean() < 1.0 and 0.99 < p.pan_valid.mean() < 1.0
    ms_path, pan_path = sample_paths(name)
    with rasterio.open(pan_path) as ds:
        assert p.pan_transform == ds.transform
    assert abs(p.ms_transform.a - 4 * p.pan_transform.a) < 1e-9
    assert p.band_names[p.sensor.rgb[0]] == "red"


def test_scene_is_a_registered_pair(sample):
    """PAN and the upsampled MS show the same ground: strong correlation of PAN with the
    mean of the visible/NIR bands."""
    name, p = sample
    h, w = (s // 4 * 4 for s in p.ms.shape[1:])
    ms = p.ms[:, :h, :w].astype(float)
    up = interp23tap(ms[None], 4)[0]
    pan = p.pan[0, : 4 * h, : 4 * w].astype(float)
    valid = p.pan_valid[: 4 * h, : 4 * w] & (np.repeat(np.repeat(p.ms_valid[:h, :w], 4, 0), 4, 1))
    r = np.corrcoef(up[1:7].mean(0)[valid], pan[valid])[0, 1]
    assert r > 0.85


def test_wald_on_real_scene(sample):
    name, p = sample
    ms = p.ms[:, :200, :200].astype(float)
    pan = p.pan[:, :800, :800].astype(float)
    ms_lr, pan_lr = wald(ms, pan, name)
    assert ms_lr.shape == (8, 50, 50) and pan_lr.shape == (1, 200, 200)
    # the reduced MS is a low-pass version of the MS: close to 4 x 4 block means
    block = ms.reshape(8, 50, 4, 50, 4).mean(axis=(2, 4))
    assert np.median(np.abs(ms_lr - block) / block) < 0.05
    # the reduced PAN lies on the MS grid: correlates with the MS band mean
    assert np.corrcoef(pan_lr[0].ravel(), ms[1:7].mean(0).ravel())[0, 1] > 0.85


def test_read_pair_by_sample_name():
    assert read_pair("wv2").sensor.key == "wv2"
