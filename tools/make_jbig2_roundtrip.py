"""Writes workflows/jbig2_roundtrip.json (run from the repo root: python tools/make_jbig2_roundtrip.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", pos=(0, 0), size=(320, 380), title="HR image")
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200, pos=(0, 430))
    enc = wf.node("MetaVSRJBIG2Encode", edges=edges[0], template="auto", pos=(360, 0), size=(340, 260))
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], original=edges[0], pos=(360, 300), size=(340, 160))
    wf.node("PreviewAny", source=dec["report"], pos=(360, 500), size=(340, 160), title="bytes / bpp / round trip")
    wf.node("PreviewAny", source=dec["round_trip"], pos=(360, 700), size=(340, 100), title="bit-exact round trip")
    sent = wf.node("MaskToImage", mask=edges[0], pos=(740, 420))
    got = wf.node("MaskToImage", mask=dec[0], pos=(1080, 420))
    wf.node("PreviewImage", images=sent[0], pos=(740, 0), size=(320, 380), title="Canny edges (sent)")
    wf.node("PreviewImage", images=got[0], pos=(1080, 0), size=(320, 380), title="JBIG2 decoded edges")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "jbig2_roundtrip.json")
