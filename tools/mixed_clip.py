"""Writes workflows/metavsr_mixed_clip.mp4, the clip of workflows/orchestrated_sr.json (run from the
repo root: python tools/mixed_clip.py).

Four scenes of four frames each at 192x192, from the orchestrator's mixed set
(models/orchestrator/mixed_set.py, registry data only): a text page, a flat cartoon, a camera panning
over a photo and an under-exposed photo -- content that wants different metadata. H.264 (libx264,
crf 12, 4:2:0) at 24 fps through models/video_file.VideoWriter (atomic write).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402
from tools.wfbuild import ROOT  # noqa: E402

SIZE, PER_SCENE, FPS = 192, 4, 24
OUT = os.path.join(ROOT, "workflows", "metavsr_mixed_clip.mp4")


def scenes():
    """-> [4 * PER_SCENE, SIZE, SIZE, 3] float32 0..1."""
    from metavsr.models.orchestrator import mixed_set as ms
    page = ms.text_page(SIZE, "DejaVuSans.ttf", 14, (25, 25, 25), (235, 232, 225), 0)
    cartoon = ms.cartoon(SIZE, 2)
    pan = ms.pan_clip(ms._photo("astronaut"), SIZE, PER_SCENE, 4.0)
    dark = ms.low_light(ms._crop(ms._photo("coffee"), SIZE, 0.7, 0.2))
    still = lambda f: np.repeat(f[None], PER_SCENE, 0)
    return np.concatenate([still(page), still(cartoon), pan, still(dark)]).astype(np.float32)


def main():
    load_pack()
    from metavsr.models.video_file import VideoWriter
    with VideoWriter(OUT, FPS, codec="h264", crf=12, preset="veryslow") as out:
        for f in scenes():
            out.write(torch.from_numpy(f))
    print(f"{OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
