"""Bad input, faults and ordinary mistakes through the command line, as issue #19 lists them.

Each case asserts: a one-line error that names the problem and its fix, exit code 2 for usage
errors and 1 for data errors, no traceback, nothing already on disk lost, no temporary file left
after the next run; and that valid inputs (NaN nodata, untagged black collars, a 4-band MS of an
8-band sensor, 1 or 3 bands without a sensor) give correct output.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sumdun.cli import main  # noqa: E402
from sumdun.fusion import fuse  # noqa: E402

from synthetic import scene, write_pair  # noqa: E402

ROOT = Path(__file__).parents[1]


def run(argv, capsys):
    """``(exit code, stdout, stderr)`` of ``sumdun ARGV`` in this process."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("sumdun ") and ": error: " in ln]
    assert len(lines) == 1, err
    return lines[0]


def cli(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "sumdun.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def parts(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".part" in p.name]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """4-band uint16 pair, MS 64 x 64 (PAN 256 x 256), 11-bit digital numbers."""
    _, ms, pan = scene(seed=5, bands=4, h=64, w=64)
    return write_pair(tmp_path_factory.mktemp("pair"), ms, pan)


@pytest.fixture(scope="module")
def wv3_crop(tmp_path_factory):
    """A real WorldView-3 crop (8 bands, uint16, no nodata tag) read from the installed
    dgsamples package into a temporary folder (never committed)."""
    from sumdun.io import sample_paths

    ms_src, pan_src = sample_paths("wv3")
    win = rasterio.windows.Window
    with rasterio.open(ms_src) as m, rasterio.open(pan_src) as p:
        ms = m.read(window=win(300, 300, 96, 96))
        pan = p.read(window=win(1200, 1200, 384, 384))
    return ms, pan


# --- wrong or crashing on valid input --------------------------------------------------------

@pytest.mark.parametrize("sensor", ["wv2", "wv3"])
def test_four_band_ms_of_an_eight_band_sensor(tmp_path, wv3_crop, sensor, capsys):
    ms, pan = wv3_crop
    ms4 = ms[[1, 2, 4, 6]]  # B, G, R, NIR1, no band descriptions
    p = write_pair(tmp_path, ms4, pan)
    rc, _, _ = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--sensor", sensor,
                    "-q"], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.count == 4 and ds.descriptions == ("blue", "green", "red", "nir1")
        out = ds.read().astype(float)
    ref = fuse(ms4.astype(float), pan.astype(float), "bt-h", sensor=sensor)
    assert np.abs(out - ref).mean() < 1.0


def test_black_collars_without_a_nodata_tag(tmp_path, wv3_crop, capsys):
    """Like the dgsamples files: 0 in every MS band outside the image, no nodata tag. The pair
    fuses (GDAL does too); the collar becomes nodata 0, the rest is fused."""
    ms, pan = (a.copy() for a in wv3_crop)
    ms[:, :, :10] = 0
    pan[:, :, :40] = 0
    p = write_pair(tmp_path, ms, pan)  # no nodata tag
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "wv3"],
                     capsys)
    assert rc == 0 and "black collar" in err and "--nodata none" in err
    with rasterio.open(tmp_path / "o.tif") as ds:
        out = ds.read()
        assert ds.nodata == 0
    assert (out[:, :, :40] == 0).all() and (out[:, :, 40:] > 0).all()


def _float_pair(folder, wv3_crop, declare: bool):
    ms, pan = (a.astype("float32") / 2047 for a in wv3_crop)
    ms[:, 20:30, 20:30] = np.nan
    pan[:, 80:120, 80:120] = np.nan
    return write_pair(folder, ms, pan, dtype="float32", nodata=np.nan if declare else None)


@pytest.mark.parametrize("declare", [True, False])
def test_float_inputs_with_nan_nodata(tmp_path, wv3_crop, declare, capsys):
    """NaN nodata declared in the file, or given as --nodata nan: NaN stays NaN, the rest is
    fused like the same data without holes (far from them)."""
    p = _float_pair(tmp_path, wv3_crop, declare)
    extra = [] if declare else ["--nodata", "nan"]
    rc, _, _ = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "wv3",
                    "-q", *extra], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        out = ds.read()
    assert np.isnan(out[:, 80:120, 80:120]).all()
    assert np.isfinite(out[:, 150:, 150:]).all()
    ref = fuse(*(a.astype("float32") / 2047 for a in wv3_crop), "bt-h", sensor="wv3")
    assert np.abs(out[:, 200:, 200:] - ref[:, 200:, 200:]).mean() < 0.002  # < 4 DN of 2047


def test_nan_without_declared_nodata_is_reported_as_nan(tmp_path, wv3_crop, capsys):
    """NaN in float files that declare no nodata: the warning says the pixels were NaN or inf
    and were written as NaN (not "black collar ... nodata 0"), with their count: MS 20:30 is
    PAN 80:120, where the PAN is NaN too, so 40 x 40."""
    ms, pan = (a.astype("float32") / 2047 for a in wv3_crop)
    ms[:, 20:30, 20:30] = np.nan
    pan[:, 80:120, 80:120] = np.nan
    pan[:, 0, 0] = np.inf
    p = write_pair(tmp_path, ms, pan, dtype="float32")
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "wv3"],
                     capsys)
    assert rc == 0
    assert "1601 PAN-grid pixels are NaN or inf in the MS or the PAN" in err
    assert "written as nodata nan" in err and "black collar" not in err
    with rasterio.open(tmp_path / "o.tif") as ds:
        out = ds.read()
        assert np.isnan(ds.nodata)
    assert np.isnan(out[:, 80:120, 80:120]).all() and np.isnan(out[:, 0, 0]).all()
    assert np.isnan(out).any(0).sum() == 1601
    rc, _, err = run(["fuse", *p, tmp_path / "n.tif", "--method", "bt-h", "--sensor", "wv3",
                      "--nodata", "none"], capsys)
    assert rc == 0 and "1601 PAN-grid pixels are NaN or inf" in err
    assert "fused from the bands' means" in err


@pytest.mark.parametrize("method", ["sumdun", "bt-h"])
def test_all_nodata_input_writes_an_all_nodata_file(tmp_path, method, capsys):
    p = write_pair(tmp_path, np.zeros((4, 32, 32)), np.zeros((1, 128, 128)), nodata=0)
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", method, "--sensor", "qb"],
                     capsys)
    assert rc == 0 and "no valid pixel" in err
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.nodata == 0 and not ds.read().any()


@pytest.mark.parametrize("method", ["bt-h", "sumdun"])
def test_nodata_does_not_enter_the_statistics(tmp_path, wv3_crop, method, capsys):
    """The pair with its left quarter nodata, against the valid part fused on its own: pixels
    more than 64 PAN pixels from the nodata agree to 0.6 DN (BT-H) and 1.0 DN (SUM-DUN, whose
    attention sees the whole tile) on average; 3.0 and 2.9 DN when the zeros entered the
    statistics."""
    ms, pan = (a.copy() for a in wv3_crop)
    ms[:, :, :24] = 0
    pan[:, :, :96] = 0
    holed = write_pair(tmp_path / "holed", ms, pan, nodata=0)
    valid = write_pair(tmp_path / "valid", wv3_crop[0][:, :, 24:], wv3_crop[1][:, :, 96:],
                       nodata=0, origin=(500000.0 + 24 * 4, 4400000.0))
    fixed = ["--prompt", "a suburb"] if method == "sumdun" else []  # the scene prompt differs
    for p, name in ((holed, "h.tif"), (valid, "v.tif")):
        assert run(["fuse", *p, tmp_path / name, "--method", method, "--sensor", "wv3", "-q",
                    *fixed], capsys)[0] == 0
    with rasterio.open(tmp_path / "h.tif") as h, rasterio.open(tmp_path / "v.tif") as v:
        a, b = h.read().astype(float)[:, :, 96 + 64:], v.read().astype(float)[:, :, 64:]
    assert np.abs(a - b).mean() < {"bt-h": 1.0, "sumdun": 1.5}[method]


@pytest.mark.parametrize("bands", [1, 3])
def test_few_bands_without_a_sensor(tmp_path, wv3_crop, bands, capsys):
    p = write_pair(tmp_path, wv3_crop[0][:bands], wv3_crop[1])
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "sumdun"], capsys)
    assert rc == 0 and "no --sensor" in err and "11-bit range" in err
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.count == bands and ds.read().mean() > 100


def test_no_sensor_note_keeps_the_given_range(tmp_path, wv3_crop, capsys):
    """With -o bits=N the note must not claim the 11-bit default it no longer uses."""
    p = write_pair(tmp_path, wv3_crop[0], wv3_crop[1])
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "sumdun", "-o", "bits=12"],
                     capsys)
    assert rc == 0 and "no --sensor" in err and "11-bit" not in err


# --- invalid options: usage errors before any work ---------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--method", "bt-h", "-o", "rows=-1"], "rows of 'bt-h' must be an integer >= 1"),
    (["--method", "sumdun", "-o", "adapt_seed=-1"], "adapt_seed of 'sumdun' must be an "
     "integer >= 0"),
    (["--method", "bt-h", "-o", "rows=abc"], "rows of 'bt-h' must be an integer"),
    (["--method", "bt-h", "-o", "speed=3"], "'bt-h' has no option 'speed'; its options: rows"),
    (["--method", "sumdun", "-o", "bits=abc"], "bits of 'sumdun' must be an integer"),
    (["--method", "sumdun", "-o", "device=cuda"], "-o device=... : use --device"),
    (["--method", "sumdun", "-o", "prompt=urban"], "-o prompt=... : use --prompt"),
    (["--method", "bt-h", "--dtype", "foo"], "dtype must be one of uint8, uint16"),
    (["--method", "sumdun", "--device", "tpu"], "device must be auto, cpu or cuda"),
    (["--method", "bt-h", "--tile", "500"], "multiple of 16 PAN pixels"),
    (["--method", "bt-h", "--nodata", "abc"], "nodata must be a number, nan or none"),
    (["--method", "bt-h", "--bands", "1,9"], "the MS has bands 1 to 4"),
    (["--method", "bt-h", "--of", "NoSuchDriver"], "not a GDAL driver"),
    (["--method", "bt-h", "--threads", "0"], "--threads must be at least 1"),
    (["--method", "exp", "--prompt", "urban"], "--prompt applies to methods that read prompts"),
    (["--method", "nope"], "unknown fusion method 'nope'"),
    (["--method", "bt-h", "--sensor", "wv9"], "unknown sensor 'wv9'"),
])
def test_bad_options_are_usage_errors(tmp_path, pair, args, message, capsys):
    out = tmp_path / "o.tif"
    rc, _, err = run(["fuse", *pair, out, *args], capsys)
    assert rc == 2 and message in one_line_error(err)
    assert not out.exists() and not parts(tmp_path)


def test_cuda_without_a_gpu(tmp_path, pair, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, _, err = run(["fuse", *pair, tmp_path / "o.tif", "--device", "cuda"], capsys)
    assert rc == 2 and "no CUDA GPU" in one_line_error(err) and "--device cpu" in err


def test_ratio_three_suggests_a_valid_tile(tmp_path, capsys):
    _, ms, pan = scene(seed=1, bands=4, h=30, w=30, ratio=3)
    p = write_pair(tmp_path, ms, pan, ratio=3)
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--ratio", "3"],
                     capsys)
    assert rc == 2 and "multiple of 48" in err and "Try 528" in err


def test_unknown_extension_and_other_formats(tmp_path, pair, capsys):
    rc, _, err = run(["fuse", *pair, tmp_path / "o.xyz", "--method", "exp"], capsys)
    assert rc == 2 and "--of DRIVER" in one_line_error(err)
    rc, _, _ = run(["fuse", *pair, tmp_path / "o.img", "--method", "exp", "-q"], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "o.img") as ds:
        assert ds.driver == "HFA" and ds.crs.to_epsg() == 32613


# --- data errors -------------------------------------------------------------------------------

def test_truncated_input(tmp_path, pair, capsys):
    data = Path(pair[0]).read_bytes()
    bad = tmp_path / "ms.tif"
    bad.write_bytes(data[: len(data) // 3])
    rc, _, err = run(["fuse", bad, pair[1], tmp_path / "o.tif", "--method", "bt-h"], capsys)
    assert rc == 1 and "re-export or re-download" in one_line_error(err)
    assert not (tmp_path / "o.tif").exists() and not parts(tmp_path)


def test_missing_input_is_a_usage_error(tmp_path, pair, capsys):
    rc, _, err = run(["fuse", tmp_path / "nope.tif", pair[1], tmp_path / "o.tif"], capsys)
    assert rc == 2 and "MS file not found" in one_line_error(err)


def test_output_is_a_folder_or_unwritable(tmp_path, pair, capsys):
    (tmp_path / "d.tif").mkdir()
    rc, _, err = run(["fuse", *pair, tmp_path / "d.tif", "--method", "exp"], capsys)
    assert rc == 2 and "is a folder" in one_line_error(err)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    immutable = False
    try:
        if os.access(ro, os.W_OK):  # root ignores the mode bits: make the folder immutable
            immutable = subprocess.run(["chattr", "+i", str(ro)]).returncode == 0
        assert not os.access(ro, os.W_OK), "cannot make a read-only folder here"
        rc, _, err = run(["fuse", *pair, ro / "o.tif", "--method", "exp"], capsys)
        assert rc == 1 and "cannot write to the output folder" in one_line_error(err)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(ro)])
        ro.chmod(0o755)


def test_disk_full_mid_write_keeps_the_old_output(tmp_path, pair, capsys, monkeypatch):
    import errno

    import sumdun.scene_fusion as sf

    out = tmp_path / "o.tif"
    out.write_bytes(b"old output")
    cast, calls = sf._cast, []

    def full(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return cast(*a, **k)

    monkeypatch.setattr(sf, "_cast", full)
    rc, _, err = run(["fuse", *pair, out, "--method", "exp", "--tile", "128", "--overlap",
                      "16", "-q"], capsys)
    assert rc == 1 and "no space left" in one_line_error(err) and len(calls) == 2
    assert out.read_bytes() == b"old output" and not parts(tmp_path)


def test_plain_tiffs_without_georeferencing(tmp_path, capsys):
    _, ms, pan = scene(seed=2, bands=4, h=16, w=16)
    for name, a in (("ms.tif", ms), ("pan.tif", pan)):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", count=a.shape[0],
                           height=a.shape[1], width=a.shape[2], dtype="uint16") as ds:
            ds.write(a.astype("uint16"))
    rc, _, err = run(["fuse", tmp_path / "ms.tif", tmp_path / "pan.tif", tmp_path / "o.tif"],
                     capsys)
    assert rc == 1 and "has no georeferencing" in one_line_error(err)


def test_ratio_two_pair(tmp_path, capsys):
    _, ms, pan = scene(seed=3, bands=4, h=64, w=64, ratio=2)
    p = write_pair(tmp_path, ms, pan, ratio=2)
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h"], capsys)
    assert rc == 1 and "pass --ratio 2" in one_line_error(err)
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "pannet", "--ratio", "2"],
                     capsys)
    assert rc == 2 and "pairs of ratio 4; this pair has ratio 2" in one_line_error(err)
    # SUM-DUN fuses it on a finer grid, onto the PAN's grid
    rc, _, _ = run(["fuse", *p, tmp_path / "s.tif", "--method", "sumdun", "--ratio", "2",
                    "-q"], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "s.tif") as out, rasterio.open(p[1]) as pan_ds:
        assert (out.width, out.height) == (pan_ds.width, pan_ds.height)
        assert out.transform == pan_ds.transform and out.count == 4
    rc, _, _ = run(["fuse", *p, tmp_path / "o.tif", "--method", "mtf-glp-hpm", "--ratio", "2",
                    "-q"], capsys)
    assert rc == 0


# --- training configurations and checkpoints ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from sumdun.data import build_dataset
    from sumdun.io import ScenePair
    from sumdun.sensors import get_sensor

    _, ms, pan = scene(seed=1, bands=4, h=128, w=128)
    p = ScenePair(ms=np.rint(ms).astype(np.uint16), pan=np.rint(pan).astype(np.uint16),
                  sensor=get_sensor("qb"), ms_nodata=0, pan_nodata=0)
    out = tmp_path_factory.mktemp("ds")
    build_dataset([p], out, patch=32, stride=32, fractions=(0.5, 0.25, 0.25), subsets=False)
    return out


def _config(path: Path, data: Path, **extra) -> Path:
    import yaml

    cfg = {"model": "sumdun_tiny", "train": [str(data / "qb_train.h5")], "val": [],
           "out_dir": str(path.parent / "run"), "epochs": 1, "batch_size": 4,
           "progress": False, **extra}
    path.write_text(yaml.safe_dump(cfg).replace("'1e-3'", "1e-3"))
    return path


def test_config_values_read_as_strings(tmp_path, tiny_data, capsys):
    cfg = _config(tmp_path / "c.yaml", tiny_data)
    cfg.write_text(cfg.read_text() + "lr: 1e-3\n")  # PyYAML reads this as a string
    rc, out, _ = run(["train", "--config", cfg], capsys)
    assert rc == 0 and "best checkpoint" in out
    cfg.write_text(cfg.read_text().replace("epochs: 1", "epochs: two"))
    rc, _, err = run(["train", "--config", cfg], capsys)
    assert rc == 2 and "epochs: 'two' is not an integer" in one_line_error(err)


def test_torn_and_corrupt_checkpoints_are_refused(tmp_path, tiny_data, capsys):
    cfg = _config(tmp_path / "c.yaml", tiny_data, epochs=2)
    assert run(["train", "--config", cfg], capsys)[0] == 0
    last = tmp_path / "run" / "last"
    # the process died after model.safetensors was replaced but before state.safetensors
    (last / "model.safetensors").write_bytes((tmp_path / "run" / "best" /
                                              "model.safetensors").read_bytes())
    data = bytearray((last / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (last / "model.safetensors").write_bytes(bytes(data))
    cfg.write_text(cfg.read_text().replace("epochs: 2", "epochs: 3"))
    rc, _, err = run(["train", "--config", cfg, "--resume"], capsys)
    assert rc == 1 and "torn or corrupt: model.safetensors" in one_line_error(err)
    (last / "state.json").write_text('{"half": ')
    import hashlib
    meta = json.loads((last / "meta.json").read_text())
    meta["files"]["model.safetensors"] = hashlib.sha256(
        (last / "model.safetensors").read_bytes()).hexdigest()
    meta["files"]["state.json"] = hashlib.sha256(b'{"half": ').hexdigest()
    (last / "meta.json").write_text(json.dumps(meta))
    rc, _, err = run(["train", "--config", cfg, "--resume"], capsys)
    assert rc == 1 and "state.json is not valid JSON" in one_line_error(err)


def test_checkpoint_is_written_as_a_unit(tmp_path, monkeypatch):
    """A crash between writing the new files and the rename leaves the old checkpoint whole;
    a crash between the two renames is repaired on the next load."""
    import torch

    import sumdun.engine.checkpoint as ck
    from sumdun.models import create_model

    model = create_model("sumdun_tiny")
    ck.save_checkpoint(tmp_path / "last", model, {"epoch": 1})
    before = (tmp_path / "last" / "model.safetensors").read_bytes()
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    replace = os.replace

    def crash(src, dst):
        if Path(dst).name == "last":
            raise KeyboardInterrupt
        return replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path / "last", model, {"epoch": 2})
    monkeypatch.setattr(ck.os, "replace", replace)
    # the old folder was moved aside, the new one never renamed in: load puts the old back
    got = ck.load_checkpoint(tmp_path / "last")
    assert got["meta"]["epoch"] == 1
    assert (tmp_path / "last" / "model.safetensors").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- MLLM server that trickles -----------------------------------------------------------------

def test_prompts_timeout_bounds_a_trickling_server(tmp_path, tiny_data):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "mllm_stub_server.py"),
                               str(port), str(tmp_path / "log.jsonl")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        r = cli("prompts", tiny_data / "qb_val.h5", "--describer", "mllm", "--model", "trickle",
                "--base-url", f"http://127.0.0.1:{port}/v1", "--timeout", "3", "--retries", "0",
                "--encoder", "hash", "--out", tmp_path / "p.h5", timeout=60)
        took = time.perf_counter() - t0
    finally:
        server.kill()
    assert r.returncode == 1 and "within 3 s" in r.stderr and "Traceback" not in r.stderr
    assert took < 20


@pytest.mark.parametrize("mode", ["hang", "dead"])
def test_fuse_with_a_hanging_or_dead_mllm_ends_within_its_total_timeout(tmp_path, pair, mode):
    """``sumdun fuse --describer mllm``: one bound for connection, reading and retries
    (``--mllm-timeout``, default 20 s, so an interactive run ends within 30 s; it took 187 s).
    Here 3 s: the command ends with one line and one request, well before the 60 s one
    request alone took (the bound leaves room for start-up on a loaded machine)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = None
    if mode == "hang":
        server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "mllm_stub_server.py"),
                                   str(port), str(tmp_path / "log.jsonl")],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
    try:
        t0 = time.perf_counter()
        r = cli("fuse", *pair, tmp_path / "o.tif", "--method", "sumdun", "--describer", "mllm",
                "--model", "hang", "--base-url", f"http://127.0.0.1:{port}/v1",
                "--mllm-timeout", "3", "-q", timeout=60)
        took = time.perf_counter() - t0
    finally:
        if server is not None:
            server.kill()
    assert r.returncode == 1 and "no answer from" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.tif").exists()
    assert took < 40, took
    if mode == "hang":  # a 3 s budget has no room for a retry after a 3 s request
        assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_mllm_timeout_default_and_validation(capsys):
    from sumdun.cli import build_parser

    args = build_parser().parse_args(["fuse", "a.tif", "b.tif", "o.tif"])
    assert args.mllm_timeout == 20.0
    rc, _, err = run(["fuse", "a.tif", "b.tif", "o.tif", "--mllm-timeout", "0"], capsys)
    assert rc == 2 and "--mllm-timeout must be a positive number" in err


# --- kill -9 and Ctrl-C mid-write ------------------------------------------------------------------

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    _, ms, pan = scene(seed=8, bands=4, h=512, w=512)
    return write_pair(tmp_path_factory.mktemp("big"), ms, pan)


def _default_signals(ignore_hangup: bool = False):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    if ignore_hangup:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _start_and_wait_for_part(big, out: Path, ignore_hangup: bool = False):
    proc = subprocess.Popen([sys.executable, "-m", "sumdun.cli", "fuse", *map(str, big),
                             str(out), "--method", "mtf-glp-hpm", "--tile", "256",
                             "--overlap", "32", "-q", "--threads", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a test run started in the background (`make test &`) ignores
                            # SIGINT, and its children would inherit that: give Ctrl-C back
                            preexec_fn=lambda: _default_signals(ignore_hangup))
    t0 = time.time()
    while not parts(out.parent) and time.time() - t0 < 60:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "finished before it could be interrupted"
    return proc


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_interrupted_run_keeps_the_old_output(tmp_path, big, how):
    """Ctrl-C, SIGTERM (Docker, Kubernetes, systemd, Dask's nanny) and SIGHUP (a closed
    terminal) clean up and exit 130 / 143 / 129 with one line; kill -9 cannot."""
    out = tmp_path / "o.tif"
    out.write_bytes(b"old output")
    proc = _start_and_wait_for_part(big, out)
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    assert out.read_bytes() == b"old output"
    if how != "SIGKILL":
        code = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}[how]
        said = "interrupted" if how == "SIGINT" else f"stopped by {how}"
        assert proc.returncode == code and "Traceback" not in err, (proc.returncode, err)
        assert f"{said}; the output was not written (an earlier file" in err
        assert len(err.strip().splitlines()) == 1, err
        assert not parts(tmp_path)
    else:
        assert proc.returncode == -9 and parts(tmp_path)  # nothing can clean up after kill -9
        r = cli("fuse", *big, out, "--method", "exp", "-q")
        assert r.returncode == 0 and not parts(tmp_path)  # the next run removes it
        with rasterio.open(out) as ds:
            assert ds.count == 4


def test_nohup_keeps_running_after_sighup(tmp_path, big):
    """A SIGHUP the caller ignores (``nohup``) stays ignored: the run goes on (then Ctrl-C
    ends it as usual)."""
    out = tmp_path / "o.tif"
    proc = _start_and_wait_for_part(big, out, ignore_hangup=True)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert alive, (proc.returncode, err)
    assert proc.returncode == 130 and "SIGHUP" not in err, err


def test_interrupted_evaluate_says_what_it_kept(tmp_path, tiny_data, capsys, monkeypatch):
    import sumdun.evaluation.runner as runner

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_write", stop)
    rc, _, err = run(["evaluate", "--methods", "exp", "--data", tiny_data / "qb_test.h5",
                      "--out", tmp_path / "ev"], capsys)
    assert rc == 130 and f"kept in {tmp_path / 'ev'}/samples.jsonl" in err and "resume" in err


# --- what GDAL / rio users expect ----------------------------------------------------------------

def test_provenance_tags_json_summary_and_creation_options(tmp_path, pair, capsys):
    rc, out, _ = run(["fuse", *pair, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "qb",
                      "--co", "PREDICTOR=2", "--json"], capsys)
    assert rc == 0
    summary = json.loads(out)
    assert summary["method"] == "bt-h" and summary["width"] == 256 and summary["bands"] == 4
    assert summary["sensor"] == "qb" and summary["tiles"] >= 1 and summary["seconds"] > 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        tags = ds.tags()
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2" or \
            ds.profile.get("predictor") == 2
    assert tags["SUMDUN_METHOD"] == "bt-h" and tags["SUMDUN_SENSOR"] == "qb"
    assert "SUMDUN_VERSION" in tags and json.loads(tags["SUMDUN_OPTIONS"]) == {}


def test_sumdun_provenance_names_weights_and_prompt(tmp_path, pair, capsys):
    rc, _, _ = run(["fuse", *pair, tmp_path / "o.tif", "--sensor", "qb", "-q"], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        tags = ds.tags()
    assert tags["SUMDUN_METHOD"] == "sumdun" and len(tags["SUMDUN_WEIGHTS_SHA256"]) == 64
    assert "QuickBird" in tags["SUMDUN_PROMPT"] and "4 bands" in tags["SUMDUN_PROMPT"]


def test_band_selection(tmp_path, wv3_crop, capsys):
    p = write_pair(tmp_path, *wv3_crop)
    rc, _, _ = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "wv3",
                    "--bands", "2,3,5,7", "-q"], capsys)
    assert rc == 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.count == 4
        out = ds.read().astype(float)
    ref = fuse(wv3_crop[0][[1, 2, 4, 6]].astype(float), wv3_crop[1].astype(float), "bt-h",
               sensor="wv3")
    assert np.abs(out - ref).mean() < 1.0


def test_quiet_and_verbose(tmp_path, pair):
    r = cli("fuse", *pair, tmp_path / "o.tif", "--method", "exp", "-q")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    r = cli("fuse", *pair, tmp_path / "o.tif", "--method", "exp", "-v", "--threads", "1")
    assert r.returncode == 0 and "using 1 CPU thread(s)" in r.stderr
    assert r.stdout.startswith(f"wrote {tmp_path / 'o.tif'}")


def test_exit_codes_of_the_console_script(tmp_path, pair):
    assert cli("fuse", *pair, tmp_path / "o.tif", "--nope").returncode == 2  # argparse
    r = cli("fuse", *pair, tmp_path / "o.tif", "-o", "rows=-1", "--method", "bt-h")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = cli("fuse", pair[1], pair[0], tmp_path / "o.tif", "--method", "bt-h")  # swapped
    assert r.returncode == 1 and "are MS and PAN swapped?" in r.stderr


def test_python_defaults_to_sumdun_like_the_cli():
    """``fuse()`` without a method fuses with SUM-DUN, as ``sumdun fuse`` without --method
    does (test_sumdun_provenance_names_weights_and_prompt reads that from the output's tags)."""
    _, ms, pan = scene(seed=4, bands=4, h=16, w=16)
    default = fuse(ms, pan, sensor="qb")
    np.testing.assert_allclose(default, fuse(ms, pan, "sumdun", sensor="qb"))
    assert np.abs(default - fuse(ms, pan, "exp", sensor="qb")).max() > 1.0  # not EXP


def test_default_threads_leave_busy_cores_alone(monkeypatch):
    """With every core kept busy by other processes, the default is 1 thread (2 threads on a
    busy 2-core machine ran 10-40x slower); SUMDUN_THREADS overrides it."""
    from sumdun.threads import _cores, default_threads

    monkeypatch.delenv("SUMDUN_THREADS", raising=False)
    spin = "import time\nt = time.time()\nwhile time.time() - t < 20: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(_cores())]
    try:
        time.sleep(1.0)
        assert default_threads() == 1
    finally:
        for p in busy:
            p.kill()
    monkeypatch.setenv("SUMDUN_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("SUMDUN_THREADS", "zero")
    with pytest.raises(ValueError, match="SUMDUN_THREADS must be a positive integer"):
        default_threads()


@pytest.mark.parametrize("user_blas", [None, "2"])
def test_set_threads_gives_numpy_blas_one_thread_unless_the_user_chose(user_blas):
    """``--threads N`` reaches torch (OMP_NUM_THREADS) and GDAL; numpy's OpenBLAS gets 1
    thread (its products here are small: a second thread spin-waits against GDAL's
    compression), unless OPENBLAS_NUM_THREADS was set by the user."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if user_blas:
        env["OPENBLAS_NUM_THREADS"] = user_blas
    code = ("import os; from sumdun.threads import set_threads, chosen_threads; "
            "set_threads(2); print(os.environ['OMP_NUM_THREADS'], "
            "os.environ['OPENBLAS_NUM_THREADS'], chosen_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split() == ["2", user_blas or "1", "2"]


# --- hostile files -------------------------------------------------------------------------------

def _alias_bomb(levels: int = 9) -> str:
    """'Billion laughs': ``levels`` anchors of nine aliases each, 9**levels leaves in ~400 B."""
    text = 'l0: &l0 ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


def test_yaml_alias_bomb_is_refused_at_once(tmp_path, pair):
    """As a fuse-batch manifest (its options would be hashed, i.e. expanded, per scene) and as
    a training configuration: exit 2 in a few seconds, one line naming the alias bomb."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(_alias_bomb() + f"defaults: {{options: {{block: *l8}}}}\n"
                        f"scenes:\n  - {{ms: {pair[0]}, pan: {pair[1]}}}\n")
    config = tmp_path / "train.yaml"
    config.write_text(_alias_bomb() + "epochs: *l8\n")
    for argv in (["fuse-batch", manifest, tmp_path / "out", "--method", "bt-h"],
                 ["train", "--config", config, "--out-dir", tmp_path / "run"]):
        t0 = time.perf_counter()
        r = cli(*argv, timeout=60)
        assert r.returncode == 2 and "alias bomb" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and time.perf_counter() - t0 < 30


def test_a_large_honest_yaml_manifest_still_loads(tmp_path):
    """The bound is far above real files: 20 000 rows load (and anchors used a few times
    are fine)."""
    from sumdun.batch import read_manifest

    rows = "".join(f"  - {{ms: m{i}.tif, pan: p{i}.tif, options: *o}}\n" for i in range(20000))
    (tmp_path / "m.yaml").write_text("common: &o {block: 64}\nscenes:\n" + rows)
    scenes = read_manifest(tmp_path / "m.yaml")
    assert len(scenes) == 20000 and scenes[-1].options == {"block": 64}


def test_a_raster_header_claiming_a_trillion_pixels_is_refused(tmp_path):
    """A 10^6 x 10^6 PAN (a VRT of a few hundred bytes says so): refused in seconds with one
    line, before any tile is read (it ran on for minutes, 1.3 GB resident, before)."""
    for name, size, res, bands in (("ms.vrt", 250000, 2.0, 4), ("pan.vrt", 1000000, 0.5, 1)):
        body = "".join(f'<VRTRasterBand dataType="UInt16" band="{b + 1}"/>' for b in range(bands))
        (tmp_path / name).write_text(
            f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:32613</SRS>'
            f"<GeoTransform>500000, {res}, 0, 4400000, 0, -{res}</GeoTransform>{body}"
            "</VRTDataset>")
    t0 = time.perf_counter()
    r = cli("fuse", tmp_path / "ms.vrt", tmp_path / "pan.vrt", tmp_path / "o.tif", "--method",
            "bt-h", timeout=60)
    assert r.returncode == 1 and "claims 250,000 x 250,000 pixels" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.perf_counter() - t0 < 30
    assert not (tmp_path / "o.tif").exists()


def _copied_weights(tmp_path, name="pannet_4b"):
    import shutil

    from sumdun.weights import weights_dir

    folder = tmp_path / name
    shutil.copytree(weights_dir(name), folder)
    return folder


def test_meta_json_claiming_huge_shapes_is_refused_before_allocating(tmp_path, pair):
    """meta.json edited to a model of 80 GB (its sha256 covers model.safetensors, not
    meta.json): refused in seconds, without the allocation (before: 107 s and 16 GB resident,
    then an out-of-memory error)."""
    import resource

    folder = _copied_weights(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["model_config"] = {**meta["model_config"], "width": 100000}
    (folder / "meta.json").write_text(json.dumps(meta))
    t0 = time.perf_counter()
    r = cli("fuse", *pair, tmp_path / "o.tif", "--method", "pannet", "-o", f"weights={folder}",
            "-q", timeout=120)
    assert r.returncode == 1 and "meta.json and model.safetensors disagree" in r.stderr, r.stderr
    assert time.perf_counter() - t0 < 60
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 4 * 2**20  # KiB: < 4 GiB


def test_safetensors_header_that_lies_is_refused(tmp_path, pair):
    """A model.safetensors whose header claims a 40 GB tensor in a file of a few bytes (its
    sha256 updated in meta.json, so only the header can give it away)."""
    import hashlib
    import struct

    folder = _copied_weights(tmp_path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [100000, 100000],
                               "data_offsets": [0, 40_000_000_000]}}).encode()
    f = folder / "model.safetensors"
    f.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    meta = json.loads((folder / "meta.json").read_text())
    meta["files"] = {**meta.get("files", {}),
                     "model.safetensors": hashlib.sha256(f.read_bytes()).hexdigest()}
    (folder / "meta.json").write_text(json.dumps(meta))
    t0 = time.perf_counter()
    r = cli("fuse", *pair, tmp_path / "o.tif", "--method", "pannet", "-o", f"weights={folder}",
            "-q", timeout=120)
    assert r.returncode == 1 and "not a readable safetensors file" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.perf_counter() - t0 < 30


# --- grids that are not an exact multiple ---------------------------------------------------------

def test_near_ratio_pair_is_resampled_onto_the_pan_grid(tmp_path, capsys):
    """A resampled product (PAN pixels 0.996 x 1.004 m under a 4 m MS, its grid 1.5 m east and
    0.7 m south): GDAL's gdal_pansharpen fuses it; sumdun stopped with "ratio is 4.016 ... pass
    --ratio 4", and with --ratio 4 the same. Now it fuses on the PAN grid with a warning that
    states the ratio and the shift, close to the fusion of the exact pair."""
    _, ms, pan = scene(seed=9, bands=4, h=64, w=64)
    exact = write_pair(tmp_path / "exact", ms, pan)
    pan_t = (500001.5, 4399999.3)
    odd = write_pair(tmp_path / "odd", ms, pan, pan_res=0.996, pan_origin=pan_t)
    import rasterio.transform as rt

    with rasterio.open(odd[1], "r+") as ds:  # non-square PAN pixels, as in the real product
        ds.transform = rt.Affine(0.996, 0, pan_t[0], 0, -1.004, pan_t[1])
    rc, _, err = run(["fuse", *odd, tmp_path / "o.tif", "--method", "bt-h", "--sensor", "wv3"],
                     capsys)
    assert rc == 0, err
    assert "not exactly 4 (a resampled product)" in err and "4.016 x 3.984" in err
    with rasterio.open(tmp_path / "o.tif") as o, rasterio.open(odd[1]) as p:
        assert o.transform.a == p.transform.a and o.transform.e == p.transform.e
        assert (o.transform.c - p.transform.c) % p.transform.a < 1e-6  # on the PAN grid
        fused = o.read().astype(float)
    rc, _, _ = run(["fuse", *exact, tmp_path / "e.tif", "--method", "bt-h", "--sensor", "wv3",
                    "-q"], capsys)
    with rasterio.open(tmp_path / "e.tif") as e:
        ref = e.read().astype(float)
    h, w = min(fused.shape[1], ref.shape[1]), min(fused.shape[2], ref.shape[2])
    # the same ground within a PAN pixel or two: close to the exact pair's fusion
    gap = np.abs(fused[:, 8:h - 8, 8:w - 8] - ref[:, 8:h - 8, 8:w - 8]).mean()
    assert gap < 0.03 * ref.max(), gap


@pytest.mark.parametrize("ratio, pan_res, suggested", [(4, 4.0 / 4.6, None),
                                                       (2, 4.0 / 2.02, 2)])
def test_ratio_error_suggests_only_a_fix_that_works(tmp_path, capsys, ratio, pan_res, suggested):
    """Ratio 4.6: no --ratio can fix it, none is suggested; a ratio-2 product resampled to
    2.02: --ratio 2 is suggested, and works."""
    _, ms, pan = scene(seed=9, bands=4, h=32, w=32, ratio=ratio)
    p = write_pair(tmp_path, ms, pan, ratio=ratio, pan_res=pan_res)
    rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h"], capsys)
    line = one_line_error(err)
    assert rc == 1 and "ratio is" in line
    if suggested is None:
        assert "--ratio" not in line
    else:
        assert f"pass --ratio {suggested}" in line
        rc, _, err = run(["fuse", *p, tmp_path / "o.tif", "--method", "bt-h", "--ratio",
                          str(suggested), "-q"], capsys)
        assert rc == 0, err  # the suggestion works
