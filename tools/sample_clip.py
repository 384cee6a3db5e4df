"""Writes workflows/metavsr_sample_clip.mp4, the HR clip the video workflows load (run from the repo
root: python tools/sample_clip.py).

A camera move over workflows/metavsr_sample.png: FRAMES frames of SIZE, panning diagonally with a
slow zoom-in (sub-pixel steps, bicubic resampling), so consecutive frames differ by real motion that
optical flow can follow and the x4 LR frames (80x48) still carry detail. H.264 (libx264, crf 12,
4:2:0) at 24 fps through models/video_file.VideoWriter (atomic write).
"""
import os
import sys

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402
from tools.wfbuild import ROOT, probe_image  # noqa: E402

FRAMES, SIZE, FPS = 16, (320, 192), 24      # SIZE = (width, height)
PAN = (48.0, 40.0)                          # source pixels moved over the clip (x, y)
ZOOM = 1.08                                 # scale at the last frame over the first
OUT = os.path.join(ROOT, "workflows", "metavsr_sample_clip.mp4")


def frames(image: np.ndarray):
    """[H,W,3] uint8 source -> FRAMES [h,w,3] uint8 views along the camera path."""
    w, h = SIZE
    for i in range(FRAMES):
        a = i / (FRAMES - 1)
        s = ZOOM ** a
        # output pixel (x, y) samples source (x0 + x / s, y0 + y / s)
        x0, y0 = 8 + PAN[0] * a, 8 + PAN[1] * a
        m = np.float32([[1 / s, 0, x0], [0, 1 / s, y0]])
        yield cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)


def main():
    load_pack()
    from metavsr.models.video_file import VideoWriter
    src = (probe_image()[0].numpy() * 255 + 0.5).astype(np.uint8)
    with VideoWriter(OUT, FPS, codec="h264", crf=12, preset="veryslow") as out:
        for f in frames(src):
            out.write(torch.from_numpy(f).float() / 255)
    print(f"{OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
