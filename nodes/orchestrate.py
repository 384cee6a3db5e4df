"""Content analysis, the orchestrated sender and the receiver's verification gate.

``METAVSR_GATE`` carries which frames may use their metadata (``present`` [T] bool) and why (a
table); MetaVSR Super-Resolve runs the other frames pixel-only.
"""
import numpy as np

from ..models.metadata import content
from ..models.orchestrator import clip as orch_clip
from ..models.orchestrator import gate as gate_mod
from ..models.orchestrator.candidates import Option, grid
from ..models.receivers.base import SR_MODEL_TYPE, Configured, Receiver
from ..models.report import plan_image
from . import _check
from ._comfy import Progress, soft_empty_cache
from ._convert import to_image, to_mask, to_numpy
from ._declare import FPS, node

GATE_TYPE = "METAVSR_GATE"
REGIMES = ["NN", "LN", "HN"]


def _list(name, text, lo, hi, integer):
    try:
        vals = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise _check.MetaVSRInputError(f"{name}: {text!r} is not a comma-separated list of numbers "
                                       f"(e.g. '10, 30, 60').") from None
    if not vals:
        raise _check.MetaVSRInputError(f"{name}: give at least one value (e.g. '10, 30, 60').")
    for v in vals:
        _check.number(name, int(v) if integer else v, lo, hi, integer=integer)
    return [int(v) for v in vals] if integer else vals


@node("MetaVSR/orchestrate",
      ("STRING", "table", "Per segment (scene cuts): bucket and the mean of every score."),
      ("STRING", "bucket", "Bucket of the longest segment: text, faces, low-light, flat, motion or natural."),
      ("FLOAT", "text", "Share of the frames covered by text-like marks in lines (mean over frames)."),
      ("FLOAT", "edge_density", "Canny (100, 200) edge density (mean over frames)."),
      ("FLOAT", "motion", "Mean DIS optical-flow magnitude between frames, px."),
      ("FLOAT", "flat", "Share of 8x8 blocks that are flat."),
      ("FLOAT", "luma", "Mean luma 0..1 (low light below 0.2)."))
class MetaVSRContentAnalysis:
    """Content analysis at the sender: per frame and per segment (scene cuts from grey-level
    histogram jumps) text-likeness, edge density, motion (DIS flow), flatness, colour count,
    luminance and faces (with a Haar cascade file you give; OpenCV 5 no longer ships one), with a
    bucket label per segment. Cheap: run it on the HR clip before MetaVSR Orchestrate Metadata."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "HR frames [T,H,W,3] (a clip or a batch of images)."}),
            "scene_cut": ("FLOAT", {"default": content.CUT, "min": 0.05, "max": 1.0, "step": 0.05, "tooltip":
                          "Histogram distance (Hellinger) between frames that starts a new segment; lower = more cuts."}),
        }, "optional": {
            "face_cascade": ("STRING", {"default": "", "tooltip":
                             "Path to a haarcascade_frontalface_default.xml to count faces (empty: faces = -1)."}),
        }}

    def run(self, images, scene_cut=content.CUT, face_cascade=""):
        frames = to_numpy(_check.image("images", images, channels=(3,), min_size=8))
        cut = _check.number("scene_cut", scene_cut, 0.05, 1.0)
        try:
            per, segs = content.analyse(frames, cut, cascade=face_cascade.strip() or None)
        except ValueError as e:
            raise _check.MetaVSRInputError(f"face_cascade: {e}; give the path of an OpenCV Haar cascade XML or "
                                           f"leave it empty.") from None
        table = content.table(per, segs)
        longest = max(segs, key=lambda s: s.stop - s.start)
        means = {k: float(np.mean(v)) for k, v in per.items()}
        return {"ui": {"text": [table]}, "result": (
            table, longest.label, means["text"], means["edges"], means["motion"], means["flat"], means["luma"])}


def _receiver(sr_model):
    if isinstance(sr_model, Receiver) and not isinstance(sr_model, Configured):
        sr_model = Configured(sr_model)
    if not isinstance(sr_model, Configured):
        raise _check.MetaVSRInputError("sr_model: not a MetaVSR receiver; connect a MetaVSR loader node.")
    return sr_model


@node("MetaVSR/orchestrate",
      ("IMAGE", "lr_images", "The received base layer [T,h,w,3]: each segment at its chosen JPEG quality, "
                             "through the channel regime."),
      ("MASK", "edges", "Decoded edge maps [T,H,W] (empty on frames sent without edges)."),
      (GATE_TYPE, "gate", "Which frames carry edges, and the gate signature of their maps; connect to MetaVSR "
                          "Verify Metadata or Super-Resolve."),
      ("INT", "bits", "Total bits sent: base layers + edge streams + gate signatures + one option byte a segment."),
      ("STRING", "table", "Per segment: bucket, chosen quality / metadata, bits and simulated PSNR."),
      ("IMAGE", "plot", "RD of every fixed choice against the orchestrated one, and J per candidate."))
class MetaVSROrchestrateMetadata:
    """The orchestrated sender: splits the HR clip at scene cuts and, for each segment, runs the
    receiver on every candidate (JPEG quality x metadata option) to pick the least J = D + lambda R
    (D: MSE from PSNR, R: the real bytes), or the best quality within a bit budget (bisection on
    lambda). Outputs the received base layer, the decoded edges and which frames carry them."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "sr_model": (SR_MODEL_TYPE, {"tooltip": "The receiver the sender simulates (it should be the one that receives)."}),
            "hr_images": ("IMAGE", {"tooltip": "HR frames [T,H,W,3], sides multiples of 4."}),
            "regime": (REGIMES, {"default": "HN", "tooltip": "Channel on the decoded base layer: NN clean, LN light, HN heavy noise and blur."}),
            "mode": (["lambda", "budget kbps"], {"default": "lambda", "tooltip":
                     "lambda: least D + lambda R; budget kbps: the best quality within the rate below."}),
            "lambda_": ("FLOAT", {"default": 100.0, "min": 0.0, "max": 1e9, "step": 1.0, "tooltip":
                        "Trade-off, in squared 8-bit error per bit: larger = fewer bits."}),
            "budget_kbps": ("FLOAT", {"default": 200.0, "min": 0.1, "max": 1e6, "step": 1.0, "tooltip":
                            "budget kbps mode: the total rate allowed (at the clip's fps)."}),
            "qualities": ("STRING", {"default": "10, 20, 30, 45, 60, 80", "tooltip": "JPEG base-layer qualities to try."}),
            "edge_densities": ("STRING", {"default": "0.01, 0.02, 0.04, 0.08", "tooltip":
                               "Canny target densities to try (thinned, coded at 1/2 resolution); 'none' is always tried."}),
            "sharp_edges": ("BOOLEAN", {"default": True, "tooltip":
                            "Also try full-resolution edges at the highest density (text and line art want them)."}),
            "fps": FPS,
        }, "optional": {
            "scene_cut": ("FLOAT", {"default": 0.5, "min": 0.05, "max": 1.0, "step": 0.05, "tooltip":
                          "Histogram distance that starts a new segment (see MetaVSR Content Analysis)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31 - 1, "tooltip": "Channel noise seed."}),
        }}

    def run(self, sr_model, hr_images, regime, mode, lambda_, budget_kbps, qualities, edge_densities,
            sharp_edges, fps, scene_cut=0.5, seed=0):
        model = _receiver(sr_model)
        hr = to_numpy(_check.image("hr_images", hr_images, channels=(3,), min_size=16))
        t, h, w, _ = hr.shape
        if h % 4 or w % 4:
            raise _check.MetaVSRInputError(f"hr_images: {w}x{h} is not a multiple of 4 on both sides; crop or "
                                           f"resize (e.g. ImageScale) first.")
        if regime not in REGIMES:
            raise _check.MetaVSRInputError(f"regime: {regime!r} is not one of {REGIMES}.")
        qs = _list("qualities", qualities, 1, 100, True)
        ds = _list("edge_densities", edge_densities, 0.0005, 0.5, False) if edge_densities.strip().lower() not in (
            "", "none") else []
        opts = [Option()] + [Option("edges", d, True, 2) for d in ds]
        if sharp_edges and ds:
            opts.append(Option("edges", max(ds), True, 1))
        cands = grid(qs, opts, accepts=model.metadata_kinds)
        kw = {}
        if mode == "lambda":
            kw["lam"] = _check.number("lambda_", lambda_, 0.0, 1e9)
        elif mode == "budget kbps":
            fps_ = _check.number("fps", fps, 0.01, 1000.0)
            kw["budget_bits"] = _check.number("budget_kbps", budget_kbps, 0.1, 1e6) * 1000.0 * t / fps_
        else:
            raise _check.MetaVSRInputError(f"mode: {mode!r} is not 'lambda' or 'budget kbps'.")
        cut = _check.number("scene_cut", scene_cut, 0.05, 1.0)
        progress = Progress(1)
        try:
            plan = orch_clip.orchestrate_clip(hr, model.receiver, cands, regime, cut=cut, seed=int(seed),
                                              options=model.options, progress=lambda d, n, msg: progress(d, n), **kw)
        except ValueError as e:
            if "budget_bits" not in kw:
                raise
            raise _check.MetaVSRInputError(f"budget_kbps: {e}") from None
        finally:
            soft_empty_cache()
        table = plan.text()
        gate = dict(present=plan.present.copy(), table=table, signature=plan.signature)
        return {"ui": {"text": [table]}, "result": (to_image(plan.lr), to_mask(plan.edges), gate, plan.bits,
                                                     table, to_image(plan_image(plan)[None]))}


@node("MetaVSR/orchestrate",
      (GATE_TYPE, "gate", "Frames whose edges passed (and that carry edges); connect to MetaVSR Super-Resolve."),
      ("STRING", "table", "Per frame: level, peak, z (and the signature's deviation) and the decision."))
class MetaVSRVerifyMetadata:
    """The receiver's verification gate (MetaSR Sec. 3.4): checks each frame's decoded edge map
    against the received LR and lets MetaVSR Super-Resolve run the frames that fail pixel-only.
    With the gate of MetaVSR Orchestrate Metadata connected, the sender's signature decides (32 bytes
    a frame: the map's CRC, and its alignment levels on the base layer): a map that is not the one
    signed for its frame (moved, random, another frame's) is refused whatever the channel did, and
    where the LR arrived as coded the levels check that it is the frame signed, in place; on held-out
    photo crops read by another JPEG decoder 99 % of true maps are kept. Without it, blind tests decide
    (edges on the LR's gradient ridges, at their best position): 84 % kept, 91 % of moved maps rejected;
    with the receiver connected, a second stage also drops maps whose output fits the LR worse than
    pixel-only."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "lr_images": ("IMAGE", {"tooltip": "Received LR frames [T,h,w,3]."}),
            "edges": ("MASK", {"tooltip": "Decoded edge maps [T,H,W] at HR size (e.g. from JBIG2 Decode)."}),
            "min_level": ("FLOAT", {"default": gate_mod.MIN_LEVEL, "min": 0.0, "max": 10.0, "step": 0.05, "tooltip":
                          "Mean LR gradient on the edges over the frame mean, at least this (random edges: about 1)."}),
            "min_peak": ("FLOAT", {"default": gate_mod.MIN_PEAK, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip":
                         "Level at the map's own place over its best 2-3 px move, at least this (moved maps: below 1)."}),
        }, "optional": {
            "gate": (GATE_TYPE, {"tooltip": "From MetaVSR Orchestrate Metadata: frames sent without edges stay pixel-only, "
                     "and its signature checks the maps (then the blind tests and the second stage are not needed)."}),
            "sr_model": (SR_MODEL_TYPE, {"tooltip": "Second stage (optional): the receiver, run with and without the edges "
                         "on the frames that pass the blind tests (no gate connected); a map whose output fits the LR worse is dropped."}),
            "max_inconsistency": ("FLOAT", {"default": gate_mod.MAX_INCONSISTENCY, "min": 1.0, "max": 10.0, "step": 0.01,
                                  "tooltip": "Second stage: the with-edges output may fit the LR at most this much worse "
                                             "(downscaled MSE ratio) than pixel-only."}),
        }}

    def run(self, lr_images, edges, min_level, min_peak, gate=None, sr_model=None,
            max_inconsistency=gate_mod.MAX_INCONSISTENCY):
        lr = to_numpy(_check.image("lr_images", lr_images, channels=(3,), min_size=4))
        e = _check.mask("edges", edges).cpu().numpy()
        if len(e) != len(lr):
            raise _check.MetaVSRInputError(f"edges: {len(e)} frame(s) for {len(lr)} LR frame(s); give one map per frame.")
        if e.shape[1] < lr.shape[1] or e.shape[2] < lr.shape[2]:
            raise _check.MetaVSRInputError(f"edges: {e.shape[2]}x{e.shape[1]} is smaller than the LR frames; connect "
                                           f"the HR-size decoded map.")
        binary = (e > 0.5).astype(np.uint8)
        sent = np.ones(len(lr), bool)
        signature = None
        if gate is not None:
            sent = np.asarray(gate.get("present"), bool) if isinstance(gate, dict) else None
            if sent is None or sent.shape != (len(lr),):
                raise _check.MetaVSRInputError("gate: not a gate for these frames; connect the gate of the same clip.")
            signature = gate.get("signature")
        try:
            res = gate_mod.check_edges(lr, binary, _check.number("min_level", min_level, 0, 10),
                                       _check.number("min_peak", min_peak, 0, 2), signature=signature)
        except ValueError as err:
            if signature is None:
                raise
            raise _check.MetaVSRInputError(f"{err}.") from None
        if sr_model is not None and signature is None:   # a signed frame needs no second look
            res = self._second_stage(_receiver(sr_model), lr, binary, res, res.accepted & sent,
                                     _check.number("max_inconsistency", max_inconsistency, 1.0, 10.0))
        present = res.accepted & sent
        table = res.table()
        if gate is not None:
            table += "\n(frames sent without edges stay pixel-only: " + \
                     f"{int((~np.asarray(gate['present'], bool)).sum())} of {len(present)})"
        return {"ui": {"text": [table]}, "result": (dict(present=present, table=table), table)}

    @staticmethod
    def _second_stage(model, lr, edges, res, candidates, max_ratio):
        """Run the receiver with and without the edges on the frames that passed (all frames at once
        for a receiver whose frames depend on each other) and drop the maps that fit the LR worse."""
        from ..models import link
        idx = np.flatnonzero(candidates)
        ratio = np.full(len(lr), np.nan)
        if idx.size and (getattr(model.receiver, "per_frame", False) or idx.size == len(lr)):
            try:
                with_e = link.receive(model.receiver, lr[idx], {"edges": edges[idx].astype(np.float32)}, model.options)
                without = link.receive(model.receiver, lr[idx], None, model.options)
            finally:
                soft_empty_cache()
            ratio[idx] = gate_mod.inconsistency(lr[idx], with_e, without)
        return gate_mod.second_stage(res, ratio, max_ratio)


NODE_CLASS_MAPPINGS = {"MetaVSRContentAnalysis": MetaVSRContentAnalysis,
                       "MetaVSROrchestrateMetadata": MetaVSROrchestrateMetadata,
                       "MetaVSRVerifyMetadata": MetaVSRVerifyMetadata}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRContentAnalysis": "MetaVSR Content Analysis",
                              "MetaVSROrchestrateMetadata": "MetaVSR Orchestrate Metadata",
                              "MetaVSRVerifyMetadata": "MetaVSR Verify Metadata"}
