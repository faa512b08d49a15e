"""Evaluation tables, resumption, failing methods, figures, ablation table layout."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from sumdun.evaluation import tables
from sumdun.evaluation.ablation import ablation_table

h5py = pytest.importorskip("h5py")

from synthetic import scene  # noqa: E402


def _rows():
    # known numbers: Q2n of A = 0.9 ± 0.1 (0.8, 1.0), B = 0.7 (one value 0.7, 0.7), C = 0.8
    return [
        {"set": "s", "method": "A", "index": 0, "Q2n": 0.8, "SAM": 3.0},
        {"set": "s", "method": "A", "index": 1, "Q2n": 1.0, "SAM": 5.0},
        {"set": "s", "method": "B", "index": 0, "Q2n": 0.7, "SAM": 2.0},
        {"set": "s", "method": "B", "index": 1, "Q2n": 0.7, "SAM": 2.0},
        {"set": "s", "method": "C", "index": 0, "Q2n": 0.8, "SAM": 1.0},
        {"set": "s", "method": "C", "index": 1, "Q2n": 0.8, "SAM": 9.0},
        {"set": "s", "method": "C", "index": 2, "error": "boom"},
    ]


def test_summarise_mean_and_sample_std():
    s = tables.summarise(_rows(), ("Q2n", "SAM"))["s"]
    assert s["A"]["Q2n"][0] == pytest.approx(0.9)
    assert s["A"]["Q2n"][1] == pytest.approx(np.sqrt(0.02))  # N-1: ((0.1)^2 * 2) / 1
    assert s["B"]["Q2n"][1] == 0.0 and s["C"]["Q2n"][2] == 2  # error row excluded


def test_markdown_marks_best_and_second_by_direction():
    md = tables.to_markdown(tables.summarise(_rows(), ("Q2n", "SAM")), ("Q2n", "SAM"),
                            decimals=2)
    lines = {line.split(" | ")[0].strip("| "): line for line in md.splitlines()
             if line.startswith("| ") and not line.startswith("| method")}
    assert "**0.90 ± 0.14**" in lines["A"]          # Q2n higher is better: A best
    assert "<u>0.80 ± 0.00</u>" in lines["C"]       # C second
    assert "0.70 ± 0.00 |" in lines["B"] and "**0.70" not in lines["B"]
    assert "**2.00 ± 0.00**" in lines["B"]          # SAM lower is better: B best (2.0)
    assert "<u>4.00 ± 1.41</u>" in lines["A"]       # A (4.0) second, C (5.0) unmarked
    assert "Q2n ↑" in md and "SAM ↓" in md


def test_ties_share_rank_and_latex_csv():
    rows = [{"set": "s", "method": m, "index": 0, "PSNR": v}
            for m, v in (("A", 30.0), ("B", 30.0), ("C", 29.0))]
    s = tables.summarise(rows, ("PSNR",))
    assert tables.ranks(s["s"], "PSNR", 2) == {"A": 1, "B": 1, "C": 2}
    tex = tables.to_latex(s, ("PSNR",), decimals=1, std=False)
    assert r"\textbf{30.0}" in tex and r"\underline{29.0}" in tex and r"\toprule" in tex
    csv_text = tables.to_csv(s, ("PSNR",))
    assert csv_text.splitlines()[0] == "set,method,metric,mean,std,n"
    assert "s,C,PSNR,29.0,0.0,1" in csv_text


def _test_file(path, n=3, bands=4, bits=11):
    gts, mss, pans = [], [], []
    for i in range(n):
        gt, ms, pan = scene(seed=40 + i, bands=bands, h=32, w=32)
        gts.append(gt), mss.append(ms), pans.append(pan)
    with h5py.File(path, "w") as f:
        f["gt"], f["ms"], f["pan"] = np.stack(gts), np.stack(mss), np.stack(pans)
        f.attrs.update(sensor="wv3" if bands == 8 else "qb", bits=bits, ratio=4)
    return path


def test_evaluate_resumes_after_interruption(tmp_path, monkeypatch):
    from sumdun.evaluation import evaluate
    import sumdun.fusion as fusion

    data = _test_file(tmp_path / "qb_test.h5")
    out = tmp_path / "eval"
    real = fusion.fuse
    calls = {"n": 0}

    def dies_on_fifth(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the run
        return real(*a, **k)

    monkeypatch.setattr(fusion, "fuse", dies_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        evaluate(["exp", "mtf-glp"], data=[data], out=out, progress=False)
    kept = (out / "samples.jsonl").read_text().splitlines()
    assert len(kept) == 4  # what was computed before the interruption is on disk
    calls["n"] = 0
    monkeypatch.setattr(fusion, "fuse", lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1),
                                                        real(*a, **k))[1])
    res = evaluate(["exp", "mtf-glp"], data=[data], out=out, progress=False)
    assert calls["n"] == 2  # only the 2 missing samples were fused again
    assert res["rr"]["qb"]["exp"]["Q2n"][2] == 3 and res["rr"]["qb"]["mtf-glp"]["Q2n"][2] == 3
    # the result equals a fresh, uninterrupted run
    fresh = evaluate(["exp", "mtf-glp"], data=[data], out=tmp_path / "fresh", progress=False)
    assert res["rr"] == fresh["rr"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["protocol"]["block"] == 32 and "code_version" in saved["protocol"]
    for name in ("table.md", "table.tex", "results.csv"):
        assert (out / name).stat().st_size > 0


def test_failing_method_is_reported_and_others_continue(tmp_path, monkeypatch):
    from sumdun.evaluation import evaluate
    from sumdun.methods.base import REGISTERED as _REGISTRY, register

    @register("flaky-test", "fails on sample 1")
    def flaky(ms, pan, sensor, ratio):
        if float(ms.mean()) == flaky.bad_mean:
            raise RuntimeError("cannot fuse this one")
        from sumdun.methods.classical._common import upsample
        return upsample(ms, ratio)

    try:
        data = _test_file(tmp_path / "qb_test.h5")
        import h5py as h

        with h.File(data) as f:
            flaky.bad_mean = float(f["ms"][1].astype(np.float64).mean())
        res = evaluate(["flaky-test", "exp"], data=[data], out=tmp_path / "e", progress=False)
        assert res["failures"] == [{"set": "qb", "method": "flaky-test", "index": 1,
                                    "error": "RuntimeError: cannot fuse this one"}]
        assert res["rr"]["qb"]["flaky-test"]["Q2n"][2] == 2
        assert res["rr"]["qb"]["exp"]["Q2n"][2] == 3
        assert "cannot fuse this one" in (tmp_path / "e" / "table.md").read_text()
        # the cause fixed, a re-run tries the failed sample again (and only that one)
        flaky.bad_mean = None
        res = evaluate(["flaky-test", "exp"], data=[data], out=tmp_path / "e", progress=False)
        assert res["failures"] == [] and res["rr"]["qb"]["flaky-test"]["Q2n"][2] == 3
        assert len((tmp_path / "e" / "samples.jsonl").read_text().splitlines()) == 7
    finally:
        _REGISTRY.pop("flaky-test", None)
    # a later run with fewer methods tables only those, though the log holds more
    res = evaluate(["exp"], data=[data], out=tmp_path / "e", progress=False)
    assert list(res["rr"]["qb"]) == ["exp"]
    assert "flaky-test" not in (tmp_path / "e" / "table.md").read_text()


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_figures_are_valid_images_of_the_right_size(tmp_path):
    pytest.importorskip("matplotlib")
    from sumdun.evaluation import figure_for_sample

    data = _test_file(tmp_path / "wv3_test.h5", bands=8)
    fig, prof = figure_for_sample(data, 1, ["exp", "bt-h"], tmp_path / "f.png",
                                  profile_out=tmp_path / "p.png", dpi=80)
    # 3 panels (reference, exp, bt-h) of 2.5 in, 2 rows (quicklook, error) at 80 dpi
    assert _png_size(fig) == (3 * 200, 2 * 200)
    assert _png_size(prof) == (720, 256)  # (9 x 3.2 in) at 80 dpi, with the error panel
    pdf = figure_for_sample(data, 0, ["exp"], tmp_path / "f.pdf")[0]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="no sample 7"):
        figure_for_sample(data, 7, ["exp"], tmp_path / "g.png")


def test_ablation_table_layout():
    from sumdun.models import ABLATIONS

    names = list(ABLATIONS)
    psnr = {n: {"wv3": 30.0 + k, "wv2": 40.0 - k} for k, n in enumerate(names)}
    md = ablation_table(psnr, names)
    assert "| T4-I | ✗ | ✗ | ✓ | 30.000 | **40.000** |" in md
    assert "| T4-IV | ✓ | ✓ | ✗ | 33.000 | 37.000 |" in md
    assert "| T5-IV | cross-attention | 37.000 | 33.000 |" in md
    assert f"**{30.0 + len(names) - 1:.3f}**" in md  # best wv3 PSNR bold (the last row)
