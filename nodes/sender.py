"""Sender-side pixel operations: MetaSR's channel regimes and CaDM's resolution / bit-depth reduction."""
from ..models.codec import bitdepth, degrade, resize
from ..models.codec.bitstream import BITSTREAM_TYPE
from . import _check
from ._comfy import Progress
from ._convert import to_image, to_numpy
from ._declare import FPS, node

CATEGORY = "MetaVSR/sender"
MAX_SAMPLES = 100000  # K-means sample pixels; the fit time grows with samples x 2^bits


@node(CATEGORY, ("IMAGE", "images", "Frames after noise and blur, same size as the input."))
class MetaVSRChannelDegrade:
    """MetaSR's transmission channel: zero-mean grey Gaussian noise, then isotropic Gaussian blur. NN =
    none; LN = σ 10/255, blur k=5 σ=0.8; HN = σ 20/255, blur k=7 σ=1.2; 'custom' uses the values below.
    Apply it to the decoded base layer. Each frame gets its own noise (seeded)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames to degrade [T,H,W,3]."}),
            "regime": (["NN", "LN", "HN", "custom"], {"default": "HN", "tooltip":
                       "MetaSR channel regime; 'custom' takes noise/blur from the widgets below."}),
            "noise_sigma": ("FLOAT", {"default": 20.0, "min": 0.0, "max": 100.0, "step": 0.5,
                                      "tooltip": "custom only: noise σ in 8-bit units (of 255)."}),
            "blur_kernel": ("INT", {"default": 7, "min": 0, "max": 31, "step": 1,
                                    "tooltip": "custom only: odd Gaussian kernel size (0 = no blur)."}),
            "blur_sigma": ("FLOAT", {"default": 1.2, "min": 0.0, "max": 10.0, "step": 0.05,
                                     "tooltip": "custom only: Gaussian blur σ in pixels."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF, "tooltip": "Noise seed."}),
        }}

    def run(self, images, regime, noise_sigma, blur_kernel, blur_sigma, seed):
        frames = _check.image("images", images)
        if regime == "custom":
            sigma = _check.number("noise_sigma", noise_sigma, 0, 100)
            k = _check.number("blur_kernel", blur_kernel, 0, 31, integer=True)
            if k not in (0, 1) and k % 2 == 0:
                raise _check.MetaVSRInputError(f"blur_kernel: {k} is even; use an odd size such as {k + 1} "
                                               f"(or 0 for no blur).")
            bs = _check.number("blur_sigma", blur_sigma, 0, 10)
            if k >= 3 and bs == 0:
                raise _check.MetaVSRInputError("blur_sigma: must be > 0 when blur_kernel is set (or set blur_kernel to 0).")
        elif regime in degrade.REGIMES:
            sigma, k, bs = degrade.REGIMES[regime]
        else:
            raise _check.MetaVSRInputError(f"regime: {regime!r} is not one of NN, LN, HN, custom.")
        seed = _check.number("seed", seed, 0, 0xFFFFFFFF, integer=True)
        return (to_image(degrade.channel_degrade(to_numpy(frames), sigma, k, bs, seed)),)


@node(CATEGORY, ("IMAGE", "images", "Frames at 1/factor of the input size."))
class MetaVSRDownscale:
    """Downscales by an integer factor: antialiased bicubic, area (block mean), or CaDM's patch-wise
    downscale (zero-pad ⌈s/2⌉, Gaussian blur, weighted average of each s×s patch)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "HR frames; width and height must be multiples of the factor."}),
            "method": (list(resize.DOWN_METHODS), {"default": "patchwise", "tooltip":
                       "bicubic (PIL/MATLAB-style antialiasing), area, or CaDM patch-wise."}),
            "factor": ("INT", {"default": 4, "min": 1, "max": 16, "tooltip": "Integer scale factor s."}),
            "patch_sigma": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.05, "tooltip":
                            "patch-wise only: Gaussian σ (0 = automatic from the kernel size 2⌈s/2⌉+1)."}),
        }}

    def run(self, images, method, factor, patch_sigma=0.0):
        frames = _check.image("images", images)
        s = _check.number("factor", factor, 1, 16, integer=True)
        if method not in resize.DOWN_METHODS:
            raise _check.MetaVSRInputError(f"method: {method!r} is not one of {resize.DOWN_METHODS}.")
        _check.divisible("images", frames, s)
        sigma = _check.number("patch_sigma", patch_sigma, 0, 10)
        return (to_image(resize.downscale(to_numpy(frames), s, method, sigma)),)


@node(CATEGORY, ("IMAGE", "images", "Frames at factor x the input size."))
class MetaVSRUpscale:
    """Upscales by an integer factor (bicubic, bilinear, or nearest): the naive receiver baseline."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "LR frames."}),
            "method": (list(resize.UP_METHODS), {"default": "bicubic", "tooltip": "Interpolation kernel."}),
            "factor": ("INT", {"default": 4, "min": 1, "max": 16, "tooltip": "Integer scale factor."}),
        }}

    def run(self, images, method, factor):
        frames = _check.image("images", images)
        s = _check.number("factor", factor, 1, 16, integer=True)
        if method not in resize.UP_METHODS:
            raise _check.MetaVSRInputError(f"method: {method!r} is not one of {resize.UP_METHODS}.")
        t, h, w, _ = frames.shape
        _check.output_size("factor", (t, h * s, w * s, 3), "use fewer frames or a smaller factor",
                           what=f"x{s} upscale")
        return (to_image(resize.upscale(to_numpy(frames), s, method)),)


@node(CATEGORY,
      ("IMAGE", "images", "Quantized frames (exactly what the stream decodes to)."),
      (BITSTREAM_TYPE, "bitstream", "Codebook + packed indices; feed the Bitrate node."),
      ("FLOAT", "cadm_ratio", "CaDM's nominal compression 24·s²/n over 24-bit full-resolution frames."),
      ("FLOAT", "actual_ratio", "Measured: 24-bit HR bits / stream bits (codebook and header included)."))
class MetaVSRBitDepthQuantize:
    """CaDM colour bit-depth reduction: K-means vector quantization of RGB to 2^n colours, the codebook
    fitted on ~1000 uniformly sampled pixels. Outputs the quantized frames and a real bitstream
    (codebook + packed n-bit indices), and CaDM's nominal ratio 24·s²/n."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames to quantize (usually already downscaled)."}),
            "bits": ("INT", {"default": 4, "min": 1, "max": 8, "tooltip": "n: 2^n colours."}),
            "codebook": (["per frame", "per clip"], {"default": "per frame", "tooltip":
                         "Fit one codebook per frame, or one for the whole clip (fewer bits, less adaptive)."}),
            "samples": ("INT", {"default": 1000, "min": 16, "max": MAX_SAMPLES, "tooltip":
                        "Pixels sampled uniformly to fit the codebook (CaDM: ~1e3; more fits the palette "
                        "closer but the fit time grows with samples x 2^n)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF, "tooltip": "Sampling/K-means seed."}),
            "scale_factor": ("INT", {"default": 4, "min": 1, "max": 16, "tooltip":
                             "s used upstream by the downscale, for the compression ratios."}),
            "fps": FPS,
        }}

    def run(self, images, bits, codebook, samples, seed, scale_factor, fps=30.0):
        frames = _check.image("images", images)
        n = _check.number("bits", bits, 1, 8, integer=True)
        s = _check.number("scale_factor", scale_factor, 1, 16, integer=True)
        samples = _check.number("samples", samples, 16, MAX_SAMPLES, integer=True)
        seed = _check.number("seed", seed, 0, 0xFFFFFFFF, integer=True)
        fps = _check.number("fps", fps, 0.01, 1000)
        if codebook not in ("per frame", "per clip"):
            raise _check.MetaVSRInputError(f"codebook: {codebook!r} is not 'per frame' or 'per clip'.")
        q, stream = bitdepth.quantize(to_numpy(frames), n, codebook == "per clip", samples, seed, fps,
                                      progress=Progress(1))
        t, h, w, _ = frames.shape
        actual = 24.0 * t * h * w * s * s / stream.nbits
        return (to_image(q), stream, bitdepth.cadm_ratio(s, n), actual)


NODE_CLASS_MAPPINGS = {
    "MetaVSRChannelDegrade": MetaVSRChannelDegrade,
    "MetaVSRDownscale": MetaVSRDownscale,
    "MetaVSRUpscale": MetaVSRUpscale,
    "MetaVSRBitDepthQuantize": MetaVSRBitDepthQuantize,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MetaVSRChannelDegrade": "MetaVSR Channel Degrade",
    "MetaVSRDownscale": "MetaVSR Downscale",
    "MetaVSRUpscale": "MetaVSR Upscale",
    "MetaVSRBitDepthQuantize": "MetaVSR Bit-Depth Quantize",
}
