"""The sender -> receiver experiment: rates from real bytes, metrics, BD deltas, figures, CLI.

References: Debian's ``jbig2dec`` decodes the transmitted edge stream; OpenCV's bicubic resize and
scikit-image's PSNR recompute the reported qualities; Bjontegaard deltas of shifted curves are known
in closed form (a constant +1 dB shift gives BD-PSNR = +1 dB, half the rate gives BD-rate = -50 %).
"""
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from metavsr.models import experiment as ex
from metavsr.models import images as im, link
from metavsr.models import report as rep
from metavsr.models.codec import jbig2
from metavsr.models.codec.jpeg import jpeg_encode
from metavsr.models.codec.resize import downscale
from metavsr.models.metadata import edge_rate
from metavsr.models.metadata.canny import canny_for_density
from metavsr.models.receivers.tiny.receiver import load_embedded

JBIG2DEC = shutil.which("jbig2dec")
SETTING = ex.EdgeSetting(0.04, True, 2)


@pytest.fixture(scope="module")
def model():
    return load_embedded()


@pytest.fixture(scope="module")
def hr():
    return im.crop_to_multiple(data.astronaut()[40:180, 150:290].astype(np.float32) / 255)


@pytest.fixture(scope="module")
def report(model, hr):
    return ex.run_experiment({"astro": hr}, model, regimes=("NN", "HN"), qualities=(30, 70),
                             edge_settings=(SETTING,), keep_image="astro")


def test_rates_are_real_bytes_and_edges_decode_with_jbig2dec(report, hr, tmp_path):
    assert hr.shape == (128, 128, 3)
    edges, low, high, _ = canny_for_density(hr[None], SETTING.density)
    coded = edge_rate.prepare(edges[0], thinning=True, factor=2)
    blob = jbig2.encode(coded, auto=True)
    if JBIG2DEC:
        src, dst = tmp_path / "e.jb2", tmp_path / "e.pbm"
        src.write_bytes(blob)
        subprocess.run([JBIG2DEC, "-t", "pbm", "-o", str(dst), str(src)], check=True, capture_output=True)
        black = ~np.asarray(Image.open(dst).convert("1"))  # PBM: 1 = black = edge
        np.testing.assert_array_equal(black, coded != 0)
    assert report["edges"]["astro"][SETTING.label]["bits"] == 8 * len(blob)
    for regime in ("NN", "HN"):
        for p in report["regimes"][regime]["points"]["with_edges"]:
            lr = downscale(hr[None], 4, "bicubic")
            jpeg_bits = 8 * len(jpeg_encode(lr, p["quality"]).payload[0])
            assert p["bits"] == jpeg_bits + 8 * len(blob)
            assert p["bpp"] == pytest.approx(p["bits"] / (128 * 128))


def test_reported_quality_matches_independent_recomputation(report, model, hr):
    for regime in ("NN", "HN"):
        pts = report["regimes"][regime]["points"]
        for q in (30, 70):
            lr = link.send_base(hr, q, regime, seed=0).received[0]
            bic = cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC).clip(0, 1)
            sr0 = model.upscale(torch.from_numpy(lr)[None])[0].numpy()
            got_b = next(p for p in pts["bicubic"] if p["quality"] == q)
            got_0 = next(p for p in pts["pixel_only"] if p["quality"] == q)
            assert got_b["psnr"] == pytest.approx(peak_signal_noise_ratio(hr, bic, data_range=1), abs=2e-3)
            assert got_0["psnr"] == pytest.approx(peak_signal_noise_ratio(hr, sr0, data_range=1), abs=2e-3)
            assert 0 < got_0["ssim"] <= 1 and got_0["lpips"] >= 0


def test_channel_only_in_hn(report, hr):
    nn = link.send_base(hr, 70, "NN", 0).received
    hn = link.send_base(hr, 70, "HN", 0).received
    assert np.abs(nn - hn).mean() > 0.01
    nn_pts = report["regimes"]["NN"]["points"]["pixel_only"]
    hn_pts = report["regimes"]["HN"]["points"]["pixel_only"]
    assert all(a["bits"] == b["bits"] for a, b in zip(nn_pts, hn_pts))  # same base layer bytes
    assert all(a["psnr"] > b["psnr"] for a, b in zip(nn_pts, hn_pts))


def test_bd_deltas_in_closed_form():
    rates = [0.1, 0.2, 0.4, 0.8]
    anchor = [dict(bpp=r, psnr=25 + 2 * np.log2(r / 0.1)) for r in rates]
    shifted = [dict(bpp=p["bpp"], psnr=p["psnr"] + 1) for p in anchor]
    cheaper = [dict(bpp=p["bpp"] / 2, psnr=p["psnr"]) for p in anchor]
    assert ex.bd_points(anchor, shifted, "psnr")["bd_psnr"] == pytest.approx(1.0, abs=1e-6)
    assert ex.bd_points(anchor, cheaper, "psnr")["bd_rate_percent"] == pytest.approx(-50.0, abs=1e-6)
    apart = [dict(bpp=p["bpp"], psnr=p["psnr"] + 20) for p in anchor]
    out = ex.bd_points(anchor, apart, "psnr")
    assert out["bd_rate_percent"] is None and "share no quality range" in out["bd_rate_percent_note"]
    assert out["bd_psnr"] == pytest.approx(20.0, abs=1e-6)
    peak = ex.peak_points(anchor, cheaper, "psnr")  # half the bits everywhere: the peak is the mean
    assert peak["max_rate_saving_percent"] == pytest.approx(50.0, abs=1e-6) and peak["max_psnr_gain"] > 0
    assert "no quality range" in ex.peak_points(anchor, apart, "psnr")["max_rate_saving_percent_note"]


def test_hull_keeps_only_efficient_points():
    pts = [dict(bpp=1, psnr=20), dict(bpp=2, psnr=19), dict(bpp=2, psnr=24), dict(bpp=3, psnr=24.5),
           dict(bpp=4, psnr=26)]
    assert [p["bpp"] for p in ex.hull_points(pts)] == [1, 2, 4]


def test_report_summary_and_figures(report, hr, tmp_path):
    for regime in ("NN", "HN"):
        s = report["regimes"][regime]["summary"]
        assert set(s["with_edges_vs_pixel_only"]) >= {"bd_rate_percent", "bd_psnr"}
        pk = s["with_edges_vs_pixel_only_peak"]
        for bd, up in (("bd_psnr", "max_psnr_gain"), ("bd_rate_percent", "max_rate_saving_percent")):
            if s["with_edges_vs_pixel_only"][bd] is not None:  # a mean never exceeds its peak
                sign = 1 if bd == "bd_psnr" else -1
                assert pk[up] >= sign * s["with_edges_vs_pixel_only"][bd] - 1e-3
        assert len(report["regimes"][regime]["points"]["with_edges"]) == 2
    lines = rep.summary_lines(report)
    assert len(lines) == 2 and lines[1].startswith("HN:")
    ex.plot_rd(report, str(tmp_path / "rd.png"))
    info = rep.side_by_side(report, hr, str(tmp_path / "sbs.png"), regime="HN", crop=64)
    assert info["with_edges_bits"] <= info["pixel_only_bits"] or info["pixel_only"]["quality"] == 70
    for name in ("rd.png", "sbs.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size[0] > 300 and im.size[1] > 100
    json.dumps(rep.jsonable(report))  # serialisable without the kept frames
    assert "_frames" not in rep.jsonable(report)


def test_cli_on_an_input_file(tmp_path):
    import run
    img = (data.chelsea()[50:146, 100:196]).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "cat.png")
    out = tmp_path / "out"
    run.main(["--input", str(tmp_path / "cat.png"), "--out", str(out), "--regimes", "HN",
              "--qualities", "25", "60", "--no-lpips"])
    rep = json.loads((out / "report.json").read_text())
    assert list(rep["regimes"]) == ["HN"] and rep["images"]["cat"] == {"height": 96, "width": 96}
    assert len(rep["regimes"]["HN"]["points"]["with_edges"]) == 2 * len(ex.EDGE_SETTINGS)
    assert os.path.getsize(out / "rd.png") > 0 and os.path.getsize(out / "side_by_side.png") > 0
