"""Stream-DiffVSR (Shiu et al. 2025): causal 4-step diffusion VSR with flow-warped guidance (ARTG, a
ControlNet on the warped previous output) and a temporal tiny decoder (TPM).

``load(folder, dtype=..., device=...)`` returns a streaming receiver (``start`` / ``push``, and
``upscale`` over a clip); importing this package imports no diffusers; loading does.
"""
from ..folder import ModelFolderError
from .loading import LAYOUT, check_folder, load
from .receiver import StreamDiffVSR, StreamSettings, summary

__all__ = ["load", "check_folder", "LAYOUT", "StreamDiffVSR", "StreamSettings", "ModelFolderError", "summary"]
