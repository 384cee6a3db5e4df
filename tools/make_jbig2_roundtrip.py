"""Writes workflows/jbig2_roundtrip.json (run from the repo root: python tools/make_jbig2_roundtrip.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", title="HR image")
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200)
    enc = wf.node("MetaVSRJBIG2Encode", edges=edges[0], template="auto")
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], original=edges[0])
    wf.node("PreviewAny", source=dec["report"], title="bytes / bpp / round trip", show=Text(3, 60))
    wf.node("PreviewAny", source=dec["round_trip"], title="bit-exact round trip", show=Text(1, 8))
    sent = wf.node("MaskToImage", mask=edges[0], column="to image")
    got = wf.node("MaskToImage", mask=dec[0], column="to image")
    wf.node("PreviewImage", images=sent[0], title="Canny edges (sent)", show=Image(192, 192), column="views")
    wf.node("PreviewImage", images=got[0], title="JBIG2 decoded edges", show=Image(192, 192), column="views")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "jbig2_roundtrip.json")
