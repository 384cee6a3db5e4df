"""Stand-ins for the few ComfyUI core nodes our workflows use, for building and testing workflows
without a ComfyUI install. Input names, types and widget order follow ComfyUI's ``nodes.py`` and
``comfy_extras``; behaviour is reduced to what a test needs (no files are written). The real
server and frontend are exercised by ``../shared/harness`` instead.
"""
import numpy as np
import torch

ANY = "*"


class LoadImage:
    """Outputs a small test image (set ``LoadImage.test_image``) whatever file is named."""
    test_image = None
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"
    CATEGORY = "image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (["example.png"], {"image_upload": True})}}

    def load_image(self, image):
        img = self.test_image
        if img is None:
            img = torch.rand(1, 64, 64, 3)
        return (img, torch.zeros(img.shape[:3]))


class _Output:
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    CATEGORY = "image"


class PreviewImage(_Output):
    FUNCTION = "save_images"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def save_images(self, images):
        assert images.ndim == 4 and images.shape[-1] in (1, 3, 4)
        assert torch.isfinite(images).all()
        return {"ui": {"images": [{"shape": list(images.shape)}]}}


class SaveImage(PreviewImage):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}}

    def save_images(self, images, filename_prefix="ComfyUI"):
        return super().save_images(images)


class PreviewAny(_Output):
    FUNCTION = "main"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": (ANY, {})}}

    def main(self, source=None):
        return {"ui": {"text": [str(source)]}}


class MaskToImage:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"
    CATEGORY = "mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)}}

    def mask_to_image(self, mask):
        return (mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3),)


class ImageToMask:
    RETURN_TYPES = ("MASK",)
    FUNCTION = "image_to_mask"
    CATEGORY = "mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "channel": (["red", "green", "blue", "alpha"],)}}

    def image_to_mask(self, image, channel):
        return (image[:, :, :, ["red", "green", "blue", "alpha"].index(channel)],)


class CLIPLoader:
    """Stands in for ComfyUI's text-encoder loader: the 'CLIP' it returns only remembers its file."""
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"
    CATEGORY = "advanced/loaders"
    TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos",
             "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": (["sd21_clip_h.safetensors"],), "type": (cls.TYPES,)},
                "optional": {"device": (["default", "cpu"], {"advanced": True})}}

    def load_clip(self, clip_name, type="stable_diffusion", device="default"):
        return ({"clip_name": clip_name, "type": type},)


class CLIPTextEncode:
    """Stands in for ComfyUI's text encoder: a CONDITIONING of OpenCLIP-H's shape [1, 77, 1024] drawn
    from a seed made of the text (the same text gives the same states)."""
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "conditioning"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}}

    def encode(self, text, clip):
        import zlib
        g = torch.Generator().manual_seed(zlib.crc32(str(text).encode()))
        return ([[torch.randn(1, 77, 1024, generator=g), {"pooled_output": None}]],)


NODE_CLASS_MAPPINGS = {c.__name__: c for c in (LoadImage, PreviewImage, SaveImage, PreviewAny, MaskToImage, ImageToMask,
                                               CLIPLoader, CLIPTextEncode)}
FRONTEND_ONLY = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}


def sample_image(size=(128, 128)) -> torch.Tensor:
    """A natural test image ``[1,H,W,3]`` (scikit-image's astronaut, resized)."""
    import cv2
    import skimage.data
    img = cv2.resize(skimage.data.astronaut(), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img.astype(np.float32) / 255.0)[None]
