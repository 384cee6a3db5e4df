"""ComfyUI hooks used when the pack runs inside ComfyUI; quiet no-ops in tests and scripts.

Every node goes through these helpers instead of importing ``comfy`` directly, so ``models/`` and
the test-suite never need a ComfyUI install.
"""
import os

import torch

try:  # inside ComfyUI
    import comfy.model_management as _mm
    import comfy.utils as _cu
except Exception:  # pragma: no cover - depends on the host
    _mm = None
    _cu = None

try:
    import folder_paths as _fp
except Exception:  # pragma: no cover
    _fp = None


class Progress:
    """``ProgressBar`` wrapper: ``update(n)`` steps, ``preview(image)`` sends a preview, and every
    call checks ComfyUI's interrupt flag so long loops stay cancellable."""

    def __init__(self, total: int, previews: bool = False):
        self.total = max(int(total), 1)
        self.done = 0
        # a preview grows the node on the canvas: only nodes whose layout leaves room for one ask
        self.previews = previews
        self._bar = _cu.ProgressBar(self.total) if _cu is not None else None

    def _send(self, preview):
        if self._bar is None:
            return
        if preview is not None and self.previews:
            self._bar.update_absolute(self.done, self.total, ("JPEG", to_pil(preview), 512))
        else:
            self._bar.update_absolute(self.done, self.total)

    def update(self, n: int = 1, preview=None):
        check_interrupt()
        self.done = min(self.done + n, self.total)
        self._send(preview)

    def __call__(self, done: int, total: int, preview=None):
        """Callback form ``(done, total[, preview])`` handed to ``models/`` loops; ``preview`` an
        optional ``[H,W,3]`` frame for ComfyUI's live preview."""
        check_interrupt()
        self.total = max(int(total), 1)
        self.done = min(int(done), self.total)
        self._send(preview)


def to_pil(image):
    """[H,W,C] float 0..1 tensor/array -> PIL image (previews, saved files)."""
    from PIL import Image
    import numpy as np
    from ..models.codec.jpeg import to_uint8
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    return Image.fromarray(to_uint8(arr))


def check_interrupt():
    """Raise ComfyUI's InterruptProcessingException when the user pressed cancel."""
    if _mm is not None:
        _mm.throw_exception_if_processing_interrupted()


def torch_device() -> torch.device:
    if _mm is not None:
        return _mm.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    if _mm is not None:
        return _mm.unet_offload_device()
    return torch.device("cpu")


def soft_empty_cache():
    if _mm is not None:
        _mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


def user_dir(kind: str) -> str:
    """ComfyUI's ``input`` or ``output`` folder; outside ComfyUI ``$METAVSR_INPUT_DIR`` /
    ``$METAVSR_OUTPUT_DIR``, else the working folder / ``./output``."""
    if _fp is not None:
        return _fp.get_input_directory() if kind == "input" else _fp.get_output_directory()
    env = os.environ.get(f"METAVSR_{kind.upper()}_DIR")
    if env:
        return env
    return os.getcwd() if kind == "input" else os.path.join(os.getcwd(), "output")


def temp_dir() -> str:
    """Where ComfyUI serves temporary previews from (``type: "temp"``); the system temp folder
    outside ComfyUI."""
    if _fp is not None:
        return _fp.get_temp_directory()
    import tempfile
    return os.path.join(tempfile.gettempdir(), "metavsr_preview")


def model_folders(kind: str) -> list:
    """Folders ComfyUI searches for ``kind`` (``extra_model_paths.yaml`` included); outside
    ComfyUI, ``$METAVSR_MODELS/<kind>`` if set."""
    if _fp is not None:
        try:
            return list(_fp.get_folder_paths(kind))
        except Exception:
            return []
    root = os.environ.get("METAVSR_MODELS")
    return [os.path.join(root, kind)] if root else []


def register_model_folder(kind: str, default_subdir: str):
    """Make ``models/<default_subdir>`` a ComfyUI model folder named ``kind`` (idempotent)."""
    if _fp is None:
        return
    path = os.path.join(_fp.models_dir, default_subdir)
    if kind not in _fp.folder_names_and_paths or path not in _fp.folder_names_and_paths[kind][0]:
        _fp.add_model_folder_path(kind, path)
