import json
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sumdun.cli import main  # noqa: E402

from synthetic import scene, write_pair  # noqa: E402


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("sensors", "degrade", "demo", "samples"):
        assert cmd in out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "sumdun.cli", "sensors"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "WorldView-3" in r.stdout


def test_methods_command(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "bt-h" in out and "mtf-glp-hpm" in out and "23-tap" in out


def test_sensors_table_and_json(capsys):
    assert main(["sensors"]) == 0
    out = capsys.readouterr().out
    for name in ("QuickBird", "IKONOS", "GeoEye-1", "WorldView-2", "WorldView-3",
                 "WorldView-4", "GaoFen-1", "GaoFen-2", "Generic"):
        assert name in out
    assert "0.325 0.355 0.36 0.35 0.365 0.36 0.335 0.315" in out
    assert main(["sensors", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {t["key"] for t in table} >= {"qb", "wv3", "gf2", "generic"}
    assert all("gnyq" in t["sources"] for t in table)


def test_degrade_command_writes_georeferenced_pair(tmp_path, capsys):
    _, ms, pan = scene(seed=9, bands=4, h=32, w=32)
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan)
    out = tmp_path / "out"
    assert main(["degrade", str(ms_p), str(pan_p), str(out), "--sensor", "qb"]) == 0
    with rasterio.open(ms_p) as src, rasterio.open(out / "ms_lr.tif") as lr, \
            rasterio.open(out / "pan_lr.tif") as plr, rasterio.open(out / "gt.tif") as gt:
        assert lr.shape == (8, 8) and plr.shape == (32, 32) and gt.shape == (32, 32)
        assert lr.crs == src.crs == plr.crs
        assert lr.res == (16.0, 16.0) and plr.transform == src.transform
        assert lr.bounds == src.bounds
        np.testing.assert_array_equal(gt.read(), src.read().astype("float32"))
        assert lr.descriptions == ("blue", "green", "red", "nir")
        assert lr.dtypes[0] == "float32"


def test_degrade_command_errors(tmp_path, capsys):
    assert main(["degrade", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), str(tmp_path)]) == 2
    assert "MS file not found" in capsys.readouterr().err
    _, ms, pan = scene(seed=9, bands=4, h=8, w=8)
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan)
    assert main(["degrade", str(ms_p), str(pan_p), str(tmp_path / "o"), "--sensor", "wv9"]) == 2
    assert "unknown sensor 'wv9'" in capsys.readouterr().err
