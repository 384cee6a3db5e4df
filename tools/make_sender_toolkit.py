"""Writes workflows/sender_toolkit.json (run from the repo root: python tools/make_sender_toolkit.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", title="HR image")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="patchwise", factor=4)
    vq = wf.node("MetaVSRBitDepthQuantize", images=down[0], bits=4, scale_factor=4)
    jpg = wf.node("MetaVSRJPEG", images=vq[0], quality=60)
    # the channel acts on what was sent: the decoded base layer (MetaSR Sec. 4.3)
    deg = wf.node("MetaVSRChannelDegrade", images=jpg[0], regime="HN", title="HN channel (received LR)")
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200)
    jb2 = wf.node("MetaVSRJBIG2Encode", edges=edges[0])
    jb2dec = wf.node("MetaVSRJBIG2Decode", bitstream=jb2[0])
    wf.node("PreviewAny", source=jb2dec[4], title="JBIG2 round trip", show=Text(2, 60))
    edge_img = wf.node("MaskToImage", mask=jb2dec[0])
    rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], bitstream_2=jb2[0], reference=hr[0])
    wf.node("PreviewAny", source=rate[0], title="Bitrate table (base + edges)", show=Text(6, 60))
    grid = wf.node("MetaVSRComparisonGrid", captions="HR\npatch-wise x4\n4-bit colours\nJPEG q60\n"
                   "HN channel (received)\nedges (JBIG2)", columns=3, resize="nearest", zoom_size=0.0,
                   images_1=hr[0], images_2=down[0], images_3=vq[0], images_4=jpg[0], images_5=deg[0],
                   images_6=edge_img[0])
    wf.node("PreviewImage", images=grid[0], title="Every stage, side by side", show=Image(640, 460))
    return wf


if __name__ == "__main__":
    save_workflow(build(), "sender_toolkit.json")
