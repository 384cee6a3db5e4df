"""Graph parts several workflows share, so each generator says only what is its own."""
from tools.wfbuild import AB_SLIDER, Image, Text


def measure_and_compare(wf, hr, runs, rates, edges, captions, zoom=(0.5, 0.4), ab=None):
    """Rates, metrics and the comparison views of a receiver comparison.

    hr:       the HR image node (reference of every measurement)
    runs:     ``[(image node, label)]`` measured against the HR (each gets a metrics table)
    rates:    ``[(bitstreams, rate title, preview title, preview lines)]`` (a Bitrate table each)
    edges:    the decoded edge MASK, drawn over the HR as the grid's last panel
    captions: the grid's captions, one per line (HR, then ``runs`` in the order given by ``ab`` …)
    ab:       ``(a node, b node, label a, label b)`` for the A/B view; the grid shows
              HR, the last run (bicubic), A, B and the edges
    """
    for streams, title, preview, lines in rates:
        kw = {f"bitstream_{i + 1}": s for i, s in enumerate(streams)}
        rate = wf.node("MetaVSRBitrate", reference=hr[0], title=title, column="measure", **kw)
        wf.node("PreviewAny", source=rate[0], title=preview, show=Text(lines, 60))
    for img, label in runs:
        met = wf.node("MetaVSRMetrics", images=img[0], reference=hr[0], color_space="RGB", crop_border=0,
                      lpips_net="alex", dists=False, label=label, column="measure")
        wf.node("PreviewAny", source=met[4], title=f"metrics: {label}", show=Text(5, 50))
    a, b, label_a, label_b = ab
    bicubic = runs[-1][0]
    overlay = wf.node("MetaVSREdgeOverlay", images=hr[0], mask=edges[0], color="#ff2020", opacity=1.0,
                      title="decoded edges on the HR")
    grid = wf.node("MetaVSRComparisonGrid", images_1=hr[0], images_2=bicubic[0], images_3=a[0], images_4=b[0],
                   images_5=overlay[0], captions=captions, columns=5, resize="nearest", zoom_size=0.3,
                   zoom_x=zoom[0], zoom_y=zoom[1], font_size=0, column="measure")
    wf.node("PreviewImage", images=grid[0], title="Comparison grid", show=Image(900, 375))
    view = wf.node("MetaVSRABCompare", image_a=a[0], image_b=b[0], split=0.5, label_a=label_a, label_b=label_b,
                   show=Image(AB_SLIDER, AB_SLIDER), column="measure")
    wf.node("PreviewImage", images=view[0], title="A/B split view", show=Image(420, 420))


def video_sender(wf, frames: int, crf: int, clip: str = "metavsr_sample_clip.mp4"):
    """HR clip -> area x4 -> H.264 base layer -> decoded at the receiver: ``(hr, base, lr)`` nodes."""
    hr = wf.node("MetaVSRLoadVideoFrames", video=clip, start_frame=0, frame_count=frames, every_nth=1,
                 title="HR clip (sender)")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="area", factor=4, title="sender: area x4")
    base = wf.node("MetaVSRVideoEncode", images=down[0], codec="h264", rate_control="crf", value=crf, fps=24.0,
                   preset="medium", title=f"sender: H.264 base layer (crf {crf})")
    lr = wf.node("MetaVSRDecodeBitstream", bitstream=base[1], title="receiver: decode base layer")
    return hr, base, lr


def clip_measures(wf, hr, runs, frames: int):
    """Temporal metrics (tOF / tLP / E_warp per frame pair) and frame metrics of each ``(node, label)``
    in ``runs`` against the HR clip, each with a text preview sized for ``frames`` frames."""
    temporal_lines, metric_lines = frames + 3, frames + 5   # title, header, rule, mean, one row per pair / frame
    for node, label in runs:
        tm = wf.node("MetaVSRTemporalMetrics", images=node[0], reference=hr[0], lpips_net="alex",
                     ewarp_flow="reference", title=f"temporal metrics: {label}", column="measure")
        wf.node("PreviewAny", source=tm[3], title=f"tOF / tLP / E_warp: {label}", show=Text(temporal_lines, 40))
    for node, label in runs:
        met = wf.node("MetaVSRMetrics", images=node[0], reference=hr[0], color_space="RGB", crop_border=0,
                      lpips_net="alex", dists=False, label=label, column="measure")
        wf.node("PreviewAny", source=met[4], title=f"metrics: {label}", show=Text(metric_lines, 54))


def clip_views(wf, hr, bicubic, a, b, captions, label_a, label_b):
    """A comparison grid over the clip (HR, ``bicubic``, ``a``, ``b``) and an A/B view of ``a`` | ``b``."""
    grid = wf.node("MetaVSRComparisonGrid", images_1=hr[0], images_2=bicubic[0], images_3=a[0], images_4=b[0],
                   captions=captions, columns=4, resize="nearest", zoom_size=0.3, zoom_x=0.45, zoom_y=0.3,
                   font_size=0, column="measure")
    wf.node("PreviewImage", images=grid[0], title="Comparison grid (every frame)", show=Image(900, 300))
    ab = wf.node("MetaVSRABCompare", image_a=a[0], image_b=b[0], split=0.5, label_a=label_a, label_b=label_b,
                 show=Image(AB_SLIDER, AB_SLIDER), column="measure")
    wf.node("PreviewImage", images=ab[0], title=f"A/B: {label_a} | {label_b}", show=Image(420, 420))
