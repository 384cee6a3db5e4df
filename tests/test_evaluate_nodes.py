"""Evaluation nodes: outputs against the metric references, list-execution sweeps, drawn pictures
checked pixel by pixel, and the error messages users see."""
import os

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

import metavsr
from metavsr.nodes import evaluate as E
from metavsr.nodes._check import MetaVSRInputError
from tools import comfy_core
from tools.wfrun import execute

IDS = ["MetaVSRMetrics", "MetaVSRTemporalMetrics", "MetaVSRSweepValues", "MetaVSRRDCurve",
       "MetaVSRComparisonGrid", "MetaVSRABCompare", "MetaVSREdgeOverlay"]


def _img(h=64, w=96, frames=1, dx=0):
    a = data.astronaut().astype(np.float32) / 255
    return torch.from_numpy(np.stack([a[120:120 + h, 150 + dx * t:150 + dx * t + w] for t in range(frames)]))


def test_registered_with_tooltips():
    for nid in IDS:
        cls = metavsr.NODE_CLASS_MAPPINGS[nid]
        assert cls.CATEGORY == "MetaVSR/evaluate" and cls.DESCRIPTION and nid in metavsr.NODE_DISPLAY_NAME_MAPPINGS
        for section in cls.INPUT_TYPES().values():
            for name, spec in section.items():
                assert spec[1].get("tooltip"), f"{nid}.{name} has no tooltip"


def test_metrics_node_matches_skimage():
    ref = _img()
    out = torch.clamp(ref + 0.04 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0)), 0, 1)
    res = E.MetaVSRMetrics().run(out, ref, "RGB", 0, "off", False, label="noisy")
    p, s, lp, ds, table = res["result"]
    assert p == pytest.approx(peak_signal_noise_ratio(ref[0].double().numpy(), out[0].double().numpy(), data_range=1), abs=1e-4)
    assert 0 < s < 1 and lp == ds == E.NOT_COMPUTED
    assert "noisy" in table and res["ui"]["text"] == [table]
    lp_on = E.MetaVSRMetrics().run(out, ref, "Y", 2, "alex", False)["result"][2]
    assert 0.01 < lp_on < 1


def test_metrics_node_clip_broadcast_reference():
    ref = _img()
    clip = torch.cat([ref, torch.clamp(ref * 0.9, 0, 1)])
    res = E.MetaVSRMetrics().run(clip, ref, "RGB", 0, "off", False)
    assert np.isinf(res["result"][0])  # first frame identical: mean PSNR is +inf, reported not NaN
    assert "inf" in res["result"][4]


def test_metrics_node_errors():
    ref = _img()
    with pytest.raises(MetaVSRInputError, match="reference: is 96x64 but images are 48x32"):
        E.MetaVSRMetrics().run(_img(32, 48), ref)
    with pytest.raises(MetaVSRInputError, match="crop_border"):
        E.MetaVSRMetrics().run(ref, ref, "RGB", 30, "off")
    with pytest.raises(MetaVSRInputError, match="frames"):
        E.MetaVSRMetrics().run(_img(frames=3), _img(frames=2), "RGB", 0, "off")


def test_missing_vgg_becomes_input_error(monkeypatch, tmp_path):
    monkeypatch.setenv("METAVSR_MODELS", str(tmp_path))
    ref = _img()
    with pytest.raises(MetaVSRInputError, match="vgg16_metrics.safetensors"):
        E.MetaVSRMetrics().run(ref, ref, "RGB", 0, "off", True)


def test_long_clips_are_chunked_identically():
    """Frames go to the device 8 at a time; per-frame and per-pair values do not depend on the chunking."""
    gt = _img(48, 64, frames=11, dx=1)
    out = torch.flip(gt, dims=[2])
    full = E.M.lpips(out, gt)
    torch.testing.assert_close(E._on_device(E.M.lpips, out, gt).float(), full)
    torch.testing.assert_close(E._on_device(E.M.tlp, out, gt, chunk=4, overlap=1).float(), E.M.tlp(out, gt))


def test_temporal_node():
    gt = _img(frames=3, dx=2)
    res = E.MetaVSRTemporalMetrics().run(gt[[0, 2, 1]], gt, "alex", "reference")
    of, lp, ew, table = res["result"]
    assert of > 1 and lp > 0 and ew > 0 and "E_warp" in table
    same = E.MetaVSRTemporalMetrics().run(gt, gt)["result"]
    assert same[0] == 0 and same[1] == 0
    with pytest.raises(MetaVSRInputError, match="at least 2 frames"):
        E.MetaVSRTemporalMetrics().run(gt[:1], gt[:1])


def test_sweep_values():
    ints, floats, n = E.MetaVSRSweepValues().run("10, 30 ;50.4")
    assert ints == [10, 30, 50] and floats == [10.0, 30.0, 50.4] and n == 3
    assert E.MetaVSRSweepValues.OUTPUT_IS_LIST == (True, True, False)
    with pytest.raises(MetaVSRInputError, match="values"):
        E.MetaVSRSweepValues().run(" , ")
    with pytest.raises(MetaVSRInputError, match="at most"):
        E.MetaVSRSweepValues().run(" ".join(["1"] * 300))
    with pytest.raises(MetaVSRInputError, match="number"):
        E.MetaVSRSweepValues().run("10, abc")


def _rd(**kw):
    base = dict(name_1=["anchor"], anchor=[1], rate_label=["bpp"], quality_label=["PSNR"], higher_is_better=[True],
                bd_method=["pchip"], log_rate=[True], show_hull=[False], width=[640], height=[420])
    base.update(kw)
    return E.MetaVSRRDCurve().run(**base)["result"]


def test_rd_curve_bd_rate_in_table_and_plot():
    r = [0.2, 0.4, 0.8, 1.6]
    q = [28.0, 30.5, 33.0, 35.0]
    plot, table = _rd(rate_1=r, quality_1=q, rate_2=[v * 1.25 for v in r], quality_2=q, name_2=["test"])
    assert "+25.00 %" in table and "anchor" in table
    assert "-25.0 % at" in table  # 25 % more bits at every quality: the peak saving is the same -25 %
    assert plot.shape == (1, 420, 640, 3) and plot.dtype == torch.float32
    px = plot[0].reshape(-1, 3)
    # matplotlib's first two colours (C0 blue, C1 orange) are drawn
    for col in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):
        assert (torch.abs(px * 255 - torch.tensor(col, dtype=torch.float32)).sum(1) < 6).sum() > 50


def test_rd_curve_lower_is_better_and_hull():
    r = [0.2, 0.4, 0.8, 1.6]
    lp = [0.5, 0.4, 0.3, 0.2]
    _, table = _rd(rate_1=r, quality_1=lp, rate_2=[v * 2 for v in r], quality_2=lp, higher_is_better=[False],
                   show_hull=[True])
    assert "+100.00 %" in table and "convex hull" in table


def test_rd_curve_degenerate_cases_do_not_crash():
    _, table = _rd(rate_1=[1.0, 2.0], quality_1=[30.0, 31.0], rate_2=[1.0, 2.0], quality_2=[40.0, 41.0])
    assert "n/a" in table and "overlap" in table
    with pytest.raises(MetaVSRInputError, match="quality_1: 1 values but rate_1 has 2"):
        _rd(rate_1=[1.0, 2.0], quality_1=[30.0])
    with pytest.raises(MetaVSRInputError, match="quality_2"):
        _rd(rate_1=[1.0, 2.0], quality_1=[30.0, 31.0], rate_2=[1.0, 2.0])
    with pytest.raises(MetaVSRInputError, match="anchor"):
        _rd(rate_1=[1.0, 2.0], quality_1=[30.0, 31.0], anchor=[3])
    with pytest.raises(MetaVSRInputError, match="inf"):
        _rd(rate_1=[1.0, 2.0], quality_1=[30.0, float("inf")])


def test_list_execution_sweep_collects_one_point_per_value():
    """Sweep -> JPEG -> (Bitrate, Metrics) -> RD Curve, executed with ComfyUI's list rules."""
    classes = {**comfy_core.NODE_CLASS_MAPPINGS, **metavsr.NODE_CLASS_MAPPINGS}
    comfy_core.LoadImage.test_image = comfy_core.sample_image((64, 64))
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "MetaVSRSweepValues", "inputs": {"values": "15, 40, 70, 95"}},
        "3": {"class_type": "MetaVSRJPEG", "inputs": {"images": ["1", 0], "quality": ["2", 0], "subsampling": "4:2:0"}},
        "4": {"class_type": "MetaVSRBitrate", "inputs": {"bitstream_1": ["3", 1], "reference": ["1", 0]}},
        "5": {"class_type": "MetaVSRMetrics", "inputs": {"images": ["3", 0], "reference": ["1", 0], "color_space": "RGB",
                                                         "crop_border": 0, "lpips_net": "off", "dists": False}},
        "6": {"class_type": "MetaVSRRDCurve", "inputs": {"rate_1": ["4", 2], "quality_1": ["5", 0], "name_1": "JPEG",
                                                        "anchor": 1, "rate_label": "bpp", "quality_label": "PSNR",
                                                        "higher_is_better": True, "bd_method": "pchip",
                                                        "log_rate": True, "show_hull": True, "width": 640, "height": 420}},
    }
    res = execute(prompt, classes)
    assert len(res["5"][0][0]) == 4 and len(res["4"][0][2]) == 4
    plot, table = res["6"][0][0][0], res["6"][0][1][0]
    assert plot.shape == (1, 420, 640, 3)
    pts = table.split("JPEG: ", 1)[1].splitlines()[0]
    assert pts.count("(") == 4
    psnrs = res["5"][0][0]
    assert psnrs == sorted(psnrs)  # higher JPEG quality, higher PSNR


def test_grid_layout_captions_and_zoom():
    a, b = _img(64, 96), torch.flip(_img(64, 96), dims=[2])
    lr = a[:, ::4, ::4]
    g = E.MetaVSRComparisonGrid().run("A\nB\nLR", 0, "nearest", 0.25, 0.5, 0.5, 16,
                                      images_1=a, images_2=b, images_3=lr)[0]
    pad, cap = 6, 16 + 16 // 2 + 6
    zoom = 96
    assert g.shape == (1, pad + cap + 64 + pad + zoom + pad, pad + 3 * (96 + pad), 3)
    y0 = pad + cap
    # panel 2 holds image B except the drawn zoom rectangle (yellow)
    tile = g[0, y0:y0 + 64, pad + 96 + pad:pad + 96 + pad + 96]
    yellow = (tile - torch.tensor([1.0, 0.85, 0.1])).abs().sum(-1) < 1e-6
    assert yellow.any()
    torch.testing.assert_close(tile[~yellow], b[0][~yellow])
    # panel 3 is the LR input enlarged by nearest neighbour (each LR pixel a 4x4 block)
    lr_tile = g[0, y0:y0 + 64, pad + 2 * (96 + pad):pad + 2 * (96 + pad) + 96]
    torch.testing.assert_close(lr_tile[~yellow][:10], lr[0].repeat_interleave(4, 0).repeat_interleave(4, 1)[~yellow][:10])
    # zoom panel of A = nearest enlargement of the centred 16x16 crop
    crop = a[0, 32 - 8:32 + 8, 48 - 8:48 + 8]
    zp = g[0, y0 + 64 + pad:y0 + 64 + pad + zoom, pad:pad + 96]
    torch.testing.assert_close(zp, crop.repeat_interleave(6, 0).repeat_interleave(6, 1))
    # the caption strip carries text (light pixels on the dark bar)
    assert g[0, pad:pad + cap, pad:pad + 96].max() > 0.8


def test_grid_captions_scale_with_the_panels():
    """Auto captions grow with the panel width (before: 18 px letters on a 1956 px grid, unreadable
    once the grid is shown at screen size) and a long caption shrinks to stay inside its panel."""
    def text_rows(g, cap_top, cap_h, x0, w):
        bar = g[0, cap_top:cap_top + cap_h, x0:x0 + w].max(-1).values
        rows = (bar > 0.6).any(-1).nonzero()
        cols = (bar > 0.6).any(0).nonzero()
        return int(rows.max() - rows.min() + 1), int(cols.max() + 1)
    for w in (96, 384):
        img = _img(64, w)
        g = E.MetaVSRComparisonGrid().run("Hg", 0, "nearest", 0.0, 0.5, 0.5, 0, images_1=img, images_2=img)[0]
        size = E.auto_font_size(w)
        pad = max(6, w // 160)
        height, _ = text_rows(g, pad, size + size // 2 + 6, pad, w)
        assert height >= 0.6 * size, (w, height, size)
    long = "a caption far too long to fit inside one narrow panel of the grid"
    g = E.MetaVSRComparisonGrid().run(long, 0, "nearest", 0.0, 0.5, 0.5, 40, images_1=_img(64, 96))[0]
    _, right = text_rows(g, 6, 40 + 20 + 6, 6, 96)
    assert right <= 96 - 4  # inside the panel, clear of its right edge


def test_grid_frames_and_limits():
    clip = _img(frames=3)
    g = E.MetaVSRComparisonGrid().run("", 2, "bicubic", 0.0, 0.5, 0.5, 12, images_1=clip, images_2=_img())[0]
    assert g.shape[0] == 3
    with pytest.raises(MetaVSRInputError, match="frames"):
        E.MetaVSRComparisonGrid().run("", 0, "nearest", 0, 0.5, 0.5, 12, images_1=clip, images_2=_img(frames=2))
    with pytest.raises(MetaVSRInputError, match="images_1: connect"):
        E.MetaVSRComparisonGrid().run("", 0, "nearest", 0, 0.5, 0.5, 12)
    big = torch.zeros(1, 4, 4, 3).expand(1200, 4, 4, 3)
    with pytest.raises(MetaVSRInputError, match="2 GiB"):
        E.MetaVSRComparisonGrid().run("", 0, "nearest", 0, 0.5, 0.5, 12, images_1=big,
                                      images_2=torch.zeros(1, 400, 400, 3))


def test_ab_compare_split_and_ui():
    a, b = _img(), torch.flip(_img(), dims=[2])
    res = E.MetaVSRABCompare().run(a, b, 0.5, "", "")
    view = res["result"][0]
    torch.testing.assert_close(view[0, :, :40], a[0, :, :40])
    torch.testing.assert_close(view[0, :, 56:], b[0, :, 56:])
    assert torch.all(view[0, :, 48] == 1.0)  # the split line
    ui = res["ui"]
    assert len(ui["a_images"]) == len(ui["b_images"]) == 1 and ui["a_images"][0]["type"] == "temp"
    assert "IMAGECOMPARE" == E.MetaVSRABCompare.INPUT_TYPES()["optional"]["compare_view"][0]
    from tempfile import gettempdir
    for rec in ui["a_images"] + ui["b_images"]:
        path = os.path.join(gettempdir(), "metavsr_preview", rec["filename"])
        assert os.path.exists(path)
        os.remove(path)


def test_edge_overlay():
    img = _img(32, 32)
    m = torch.zeros(1, 64, 64)
    m[:, 10:20, 30:34] = 1  # mask at 2x the image size: scaled by nearest
    out = E.MetaVSREdgeOverlay().run(img, m, "#00ff00", 1.0)[0]
    on = torch.zeros(32, 32, dtype=torch.bool)
    on[5:10, 15:17] = True
    assert torch.all(out[0][on] == torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(out[0][~on], img[0][~on])
    half = E.MetaVSREdgeOverlay().run(img, m, "red", 0.5)[0]
    torch.testing.assert_close(half[0][on], img[0][on] * 0.5 + torch.tensor([1.0, 0x20 / 255, 0x20 / 255]) * 0.5)
    with pytest.raises(MetaVSRInputError, match="color"):
        E.MetaVSREdgeOverlay().run(img, m, "#12", 1.0)
    with pytest.raises(MetaVSRInputError, match="aspect"):
        E.MetaVSREdgeOverlay().run(img, torch.zeros(1, 32, 64), "red", 1.0)
