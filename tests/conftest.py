"""Load the repo root as the package ``metavsr`` (no ComfyUI needed)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from _pack import load_pack  # noqa: E402

load_pack("metavsr")
