"""Writes workflows/sender_toolkit.json (run from the repo root: python tools/make_sender_toolkit.py)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402
from tools import comfy_core  # noqa: E402
from tools.wfbuild import Workflow  # noqa: E402

pack = load_pack()
CLASSES = {**comfy_core.NODE_CLASS_MAPPINGS, **pack.NODE_CLASS_MAPPINGS}


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", pos=(0, 0), size=(320, 380), title="HR image")
    deg = wf.node("MetaVSRChannelDegrade", images=hr[0], regime="HN", pos=(360, 0))
    down = wf.node("MetaVSRDownscale", images=deg[0], method="patchwise", factor=4, pos=(360, 260))
    vq = wf.node("MetaVSRBitDepthQuantize", images=down[0], bits=4, scale_factor=4, pos=(360, 430))
    jpg = wf.node("MetaVSRJPEG", images=vq[0], quality=60, pos=(360, 720))
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200, pos=(0, 430))
    edge_img = wf.node("MaskToImage", mask=edges[0], pos=(0, 700))
    rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], reference=hr[0], pos=(760, 720), size=(340, 220))
    wf.node("PreviewAny", source=rate[0], pos=(1120, 720), size=(560, 220), title="Bitrate table")
    x = 760
    for title, out in (("1 HN channel", deg[0]), ("2 patch-wise x4", down[0]), ("3 4-bit colours", vq[0]),
                       ("4 JPEG decoded", jpg[0]), ("Canny edges (HR)", edge_img[0])):
        wf.node("PreviewImage", images=out, pos=(x, 0), size=(300, 340), title=title)
        x += 320
    return wf


if __name__ == "__main__":
    build().save(os.path.join(ROOT, "workflows", "sender_toolkit.json"))
