"""Writes workflows/sender_toolkit.json (run from the repo root: python tools/make_sender_toolkit.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", pos=(0, 0), size=(320, 380), title="HR image")
    deg = wf.node("MetaVSRChannelDegrade", images=hr[0], regime="HN", pos=(360, 0))
    down = wf.node("MetaVSRDownscale", images=deg[0], method="patchwise", factor=4, pos=(360, 270))
    vq = wf.node("MetaVSRBitDepthQuantize", images=down[0], bits=4, scale_factor=4, pos=(360, 470))
    jpg = wf.node("MetaVSRJPEG", images=vq[0], quality=60, pos=(360, 830))
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200, pos=(0, 430))
    jb2 = wf.node("MetaVSRJBIG2Encode", edges=edges[0], pos=(0, 720))
    jb2dec = wf.node("MetaVSRJBIG2Decode", bitstream=jb2[0], pos=(0, 1060))
    wf.node("PreviewAny", source=jb2dec[4], pos=(0, 1260), size=(340, 120), title="JBIG2 round trip")
    edge_img = wf.node("MaskToImage", mask=jb2dec[0], pos=(360, 990))
    rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], bitstream_2=jb2[0], reference=hr[0],
                   pos=(360, 1090), size=(340, 230))
    wf.node("PreviewAny", source=rate[0], pos=(760, 1090), size=(600, 230), title="Bitrate table (base + edges)")
    grid = wf.node("MetaVSRComparisonGrid", captions="HR\nHN channel\npatch-wise x4\n4-bit colours\nJPEG q60\n"
                   "edges (JBIG2)", columns=3, resize="nearest", zoom_size=0.0,
                   images_1=hr[0], images_2=deg[0], images_3=down[0], images_4=vq[0], images_5=jpg[0],
                   images_6=edge_img[0], pos=(760, 0), size=(340, 470))
    wf.node("PreviewImage", images=grid[0], pos=(1130, 0), size=(700, 560), title="Every stage, side by side")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "sender_toolkit.json")
