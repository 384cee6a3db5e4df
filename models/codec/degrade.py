"""MetaSR's transmission channel: grey Gaussian noise then isotropic Gaussian blur (Sec. 4.1).

The regimes apply on top of the decoded (JPEG/video) base layer, as in the paper:
NN = no noise; LN = σ 10/255 noise, blur k=5 σ=0.8; HN = σ 20/255 noise, blur k=7 σ=1.2.
"""
import cv2
import numpy as np

# regime -> (noise sigma in 0..255 units, blur kernel size, blur sigma)
REGIMES = {"NN": (0.0, 0, 0.0), "LN": (10.0, 5, 0.8), "HN": (20.0, 7, 1.2)}


def channel_degrade(frames: np.ndarray, noise_sigma: float, blur_kernel: int, blur_sigma: float,
                    seed: int = 0) -> np.ndarray:
    """Degrade ``frames`` ``[T,H,W,C]`` float 0..1 -> same shape float32 0..1.

    Noise is one grey (luma-only) field per frame, added equally to all channels, drawn from a
    generator seeded with ``(seed, t)`` so a frame's noise does not depend on the clip length. The
    noisy frame is clipped to 0..1 because the channel carries an 8-bit-range image; the blur
    (``blur_kernel`` odd >= 3, or 0/1 for none) follows the noise, with reflected borders.
    """
    if blur_kernel not in (0, 1) and (blur_kernel < 3 or blur_kernel % 2 == 0):
        raise ValueError(f"blur_kernel must be 0 (off) or an odd size >= 3, got {blur_kernel}")
    if noise_sigma < 0 or blur_sigma < 0:
        raise ValueError("noise_sigma and blur_sigma must be >= 0")
    out = np.empty(frames.shape, np.float32)
    for t, frame in enumerate(frames):
        x = frame.astype(np.float32, copy=True)
        if noise_sigma > 0:
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, t])
            noise = rng.standard_normal(x.shape[:2], dtype=np.float32) * np.float32(noise_sigma / 255.0)
            x += noise[..., None]
            np.clip(x, 0.0, 1.0, out=x)
        if blur_kernel >= 3:
            x = cv2.GaussianBlur(x, (blur_kernel, blur_kernel), sigmaX=blur_sigma, sigmaY=blur_sigma,
                                 borderType=cv2.BORDER_REFLECT_101)
            if x.ndim == 2:
                x = x[..., None]
        out[t] = x
    return out
