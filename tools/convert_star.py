"""Convert a released STAR checkpoint (light_deg.pt / heavy_deg.pt, a torch.save'd state dict of ~8 GB)
to safetensors (fp16 by default: 4 GB, loads without unpickling, memory-mapped).

    python tools/convert_star.py ComfyUI/models/STAR/light_deg.pt            # -> light_deg.safetensors
    python tools/convert_star.py light_deg.pt --out star_light.safetensors --dtype bf16

The checkpoint is read with ``weights_only=True`` and checked key for key against our model first
(models/receivers/star/loading.py); the model config goes into the file's metadata, tensors the model
does not use are left out (and listed). The output is written to a temporary file and renamed when
complete.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def convert(src: str, out: str = None, dtype: str = "fp16") -> str:
    load_pack()
    from metavsr.models.receivers.star import loading
    cfg, layout, extra = loading.inspect_checkpoint(src)
    out = out or os.path.splitext(src)[0] + ".safetensors"
    if os.path.abspath(out) == os.path.abspath(src):
        raise SystemExit(f"--out {out!r} would overwrite the source; give another name")
    if src.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(src, framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    else:
        state = loading._pt_state(src)
    loading.save_safetensors(state, cfg, out, DTYPES[dtype])
    if extra:
        print(f"left out {len(extra)} tensors the model does not use: {', '.join(extra[:5])}"
              f"{' ...' if len(extra) > 5 else ''}")
    print(f"{out}: {len(layout) - len(extra)} tensors, {os.path.getsize(out) / 2**30:.2f} GiB, {dtype}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default=None)
    ap.add_argument("--dtype", choices=list(DTYPES), default="fp16")
    a = ap.parse_args(argv)
    try:
        convert(a.checkpoint, a.out, a.dtype)
    except ValueError as e:          # STARModelError: names the file and the fix
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
