"""The verification gate at the receiver (MetaSR Sec. 3.4: V = v(Y, M); metadata that does not agree
with the received frames is dropped, so a receiver never does worse than pixel-only because of it).

The receiver has the LR frames Y and the decoded edge map M (HR size). Edges the sender found on the
HR image sit on the intensity ridges that survive downscaling, so on the gradient magnitude G of the
LR upsampled to HR (bicubic, Gaussian sigma 1, Sobel) an honest map has two properties that a
corrupted one lacks:

- *level*: the mean of G on the map's pixels, over the mean of G (``level``), is well above 1; random
  edges (and edges of another scene) land on average gradient, level ~ 1;
- *alignment*: the map sits where G agrees with it best. ``peak`` = level at the map's own position over
  the best level of the map moved by 2-3 px in 16 directions; an honest map is at its peak (> 1), one
  displaced by 2-3 px finds a better position among the moves (< 1), one displaced further loses level.

Dense text fails the level test although its map is right: glyph strokes cover the whole page, so
the map's mean gradient is the page's (level ~ 1.0-1.2). A second test asks whether the map is
where it is *by chance*: ``z`` = (level at its place - mean level of the map moved 8-12 px in 24
directions) / their standard deviation. A map that passes ``z >= min_z`` and is at its sharp peak
(``peak >= min_z_peak``) also passes.

The map passes either test, per frame (a frame without edges passes: nothing to misuse). The level
test's thresholds were set on crops of scikit-image's astronaut, camera and coffee, the z test's on
rendered text pages and cartoons (``models/orchestrator/mixed_set.py``); ``bench/gate.py`` measures
them there and on held-out images and renders. Edge maps only.

A second stage, where the receiver can be run (MetaVSR Verify Metadata with its ``sr_model``
connected): the frame is super-resolved with and without the map, both outputs are brought back to
LR size, and the map is dropped when the with-map output fits the received LR more than
``MAX_INCONSISTENCY`` worse (:func:`inconsistency`, :func:`second_stage`). A wrong map that the
first stage lets through makes the receiver draw edges the LR does not have; a right one rarely
does. It costs true maps too (``bench/gate.py --damage``).

Signed check (the sender's part, :func:`sign`): the sender holds the true map and the base layer
as the receiver decodes it, so it can measure what the receiver will measure: for each frame the
map's level at its place and moved by 2 px in 8 directions (nine values), a fingerprint of the
decoded LR itself (mean luma, Immerkaer's noise estimate, mean gradient at three scales), and a
CRC-32 of the map's bits. They travel as a ``Bitstream("gate-signature")`` of 32 bytes a frame,
counted in the rate, indexed by frame like the base layer (in a deployment they would ride in it,
as user data: a JPEG APP segment, an H.264 SEI message). At the receiver:

- the map must be the one the sender signed for this frame (its CRC): a map moved by any amount,
  another frame's map, a random or damaged one is refused, whatever the channel did to the LR;
- when the LR's fingerprint matches (the base layer arrived as coded, whatever JPEG decoder read
  it), the nine levels on the received LR must match the sender's within ``MAX_DEVIATION``: this
  checks the LR side, that the frame is the one signed and sits where it did (an LR shifted by half
  a pixel or the frame of a moving camera 6-15 px away changes them). Maps of detail the LR cannot
  show (text finer than the LR, motion-blurred streaks) are kept rather than judged unverifiable.
  Levels further off pass if they keep their pattern (below);
- when the channel altered the LR on the way (the LN / HN channel's noise and blur: the fingerprint
  moved, its noise estimate or finest gradient band by more than ``CHANNEL_CHANGE``) the levels no
  longer describe it; the CRC has verified the map, and the LR is only checked for being another
  scene (its mean luma more than ``MAX_FOREIGN_LUMA`` away). An LR moved or swapped for a nearby
  frame is not detected there: under HN noise on a 128 px crop the level surface is too noisy to
  place a map to half an LR pixel (``bench/gate.py --signed --channel HN`` measures it);
- when the fingerprint moved but less than that, or the levels are off although it did not, the LR
  itself changed after coding (moved, another frame, a mild filter or noise): the nine levels may all
  change by one factor, as a filter or mild noise scales them together, but their pattern must stay
  (coefficient of variation of received over signed at most ``MAX_PATTERN_CHANGE``; the table marks
  it ``chg.``); an LR moved under the map raises the levels on one side.

Blind tests alone, on held-out photo crops, accept 84 % of true maps and reject 91 % of moved ones (in
soft images the LR fixes an edge only to about +-2 HR px), every random map and 95 % of another
frame's; on held-out text pages and cartoons 88 % / 95 % / 98 % / 98 %. Signed, with the base layer
JPEG-coded and the receiver decoding it with another decoder (FFmpeg's against libjpeg-turbo), on
held-out photo crops and renders: every moved (2-6 px), random and other frame's map rejected in NN,
LN and HN; true maps kept 100 % (NN), 99-100 % (LN), 98-100 % (HN) (``python bench/gate.py --signed
--damage --channel ...``). The LR side is weaker: of LRs moved by half a pixel after decoding 70-92 %
are caught in NN, 0-8 % under LN / HN; of a nearby frame's 60-79 % in NN, 4-52 % under LN / HN.

Why a signature: a map of detail finer than the LR (the motion-blurred clock's streaks, speckle)
gives a flat alignment surface, so from the LR alone a true map and the same map moved by 2 px are
the same; the blind tests then either accept both or reject both. The sender knows which is which.

    check_edges(lr [T,h,w,3] 0..1, edges [T,H,W] 0/1[, signature]) -> GateResult(accepted, level, peak, z: [T])
    map_crc(edges [H,W]) -> int
    sign(decoded_lr [T,h,w,3], edges [T,H,W]) -> Bitstream("gate-signature")
"""
import zlib
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np
import torch

from ..codec.bitstream import Bitstream
from ..ops.noise import noise_level

MIN_LEVEL = 1.5
MIN_PEAK = 0.96     # a little below 1: thin lines and textures put a true map's best move near it
SHIFTS = tuple((dx, dy) for r in (2, 3) for dx, dy in
               ((r, 0), (-r, 0), (0, r), (0, -r), (r, r), (-r, r), (r, -r), (-r, -r)))
MARGIN = 4          # border pixels left out (moved maps would read outside the frame)
# the alignment test's null: the map moved 8-12 px (24 moves), where it no longer sits on its edges
FAR = tuple((dx, dy) for dx in range(-12, 13, 4) for dy in range(-12, 13, 4) if max(abs(dx), abs(dy)) >= 8)
FAR_MARGIN = 13
MIN_Z, MIN_Z_PEAK = 2.0, 0.99
MAX_INCONSISTENCY = 1.05   # second stage: the with-edges output may fit the LR at most 5 % worse

# signed check: the map at its place and moved 2 px in 8 directions; levels over (frame mean + floor),
# the floor so that a nearly flat frame's decoder rounding does not read as a change
SIGN_MOVES = ((0, 0),) + tuple((2 * dx, 2 * dy) for dx, dy in
                               ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)))
SIGN_FLOOR = 0.05
# set on the tuning crops' true maps read by another JPEG decoder (largest deviation 0.0103)
MAX_DEVIATION = 0.012
# the LR counts as altered when a fingerprint value moves more than this (relative; luma: 2.5 levels):
# another JPEG decoder moves them up to 6.5 % (luma 1.5 levels) on the tuning crops, LN / HN mostly far more
MAX_ALTERATION, MAX_LUMA_CHANGE = 0.08, 2.5 / 255
# an altered LR whose mean luma moved more than this is another scene: HN noise clipped at black or
# white moves a frame's mean by at most about 8 levels (sigma 20 / sqrt(2 pi))
MAX_FOREIGN_LUMA = 16 / 255
# an alteration is the channel's when the noise estimate or the finest gradient band moved more than
# this (relative): the LN / HN channel's noise and blur move one of them further on every tuning crop;
# an LR moved by half a pixel, or the frame of a moving camera, mostly leaves both within 30 % (that is
# the LR, not the channel, changing)
CHANNEL_CHANGE = 0.3
# an LR that changed after coding must keep the nine levels' pattern: they may all change by one
# factor (a mild channel scales them together) but by at most this coefficient of variation of
# received over signed (a move of the LR under the map raises the levels on one side); set on the
# tuning crops: 98 % of the LN channel's true maps that land here pass, 93 % of half-pixel moves fail
MAX_PATTERN_CHANGE = 0.05
SIGNATURE_CODEC = "gate-signature"
FINGERPRINT = 5
RECORD_BYTES = 2 * (FINGERPRINT + len(SIGN_MOVES)) + 4
LEVEL_STEPS, LEVEL_MAX = 4096, 65535 / 4096


@dataclass(frozen=True)
class GateResult:
    """Per frame: ``accepted`` (bool), ``level``, ``peak``, ``z`` and, after the second stage,
    ``inconsistency`` (NaN where it did not run; see the module doc)."""
    accepted: np.ndarray
    level: np.ndarray
    peak: np.ndarray
    z: np.ndarray
    inconsistency: Optional[np.ndarray] = None
    deviation: Optional[np.ndarray] = None   # signed: largest level change (LR changed: pattern change)
    altered: Optional[np.ndarray] = None     # signed frames whose LR no longer matches its fingerprint
    map_ok: Optional[np.ndarray] = None      # signed frames whose map is the one signed (its CRC)
    changed: Optional[np.ndarray] = None     # signed frames whose LR changed, not by the channel

    @property
    def all_accepted(self) -> bool:
        return bool(self.accepted.all())

    def check(self, i: int) -> str:
        """How frame ``i`` was decided: "signature" (the map's CRC and, the LR as coded, its levels),
        "signature, LR altered" (the channel altered the LR: the CRC, and the LR only checked for
        another scene), "signature, LR changed" (the CRC, and the levels' pattern) or "blind" (no
        signature)."""
        if self.deviation is None:
            return "blind"
        if self.changed[i] and self.map_ok[i]:
            return "signature, LR changed"
        return "signature, LR altered" if self.altered[i] else "signature"

    def mark(self, i: int) -> str:
        """The table's ``dev`` entry of frame ``i``: the deviation, ``map`` (not the map signed),
        ``alt.`` (the channel altered the LR, the map's CRC decided), ``chg.`` (the LR changed after
        coding, the levels' pattern kept) or ``lr`` (an LR of another scene, or changed and the
        pattern not kept)."""
        if not self.map_ok[i]:
            return "map"
        if self.altered[i]:
            return "alt." if self.accepted[i] else "lr"
        if self.changed[i]:
            return "chg." if self.accepted[i] else "lr"
        return f"{self.deviation[i]:6.3f}"

    def table(self) -> str:
        """Per frame: level, peak, z, the signature's deviation (or what decided: :meth:`mark`), the
        second stage's fit, and the decision."""
        inc, dev = self.inconsistency, self.deviation
        rows = [f"{'frame':>5}  {'level':>6}  {'peak':>6}  {'z':>6}" + ("  {:>6}".format("dev") if dev is not None else "")
                + ("  {:>6}".format("fit") if inc is not None else "") + "  decision"]
        for i, (a, lv, pk, z) in enumerate(zip(self.accepted, self.level, self.peak, self.z)):
            d = "" if dev is None else "  {:>6}".format(self.mark(i))
            fit = f"  {inc[i]:6.3f}" if inc is not None else ""
            rows.append(f"{i:>5}  {lv:6.2f}  {pk:6.3f}  {z:6.2f}{d}{fit}  {'metadata' if a else 'pixel-only'}")
        if dev is not None:
            rows += [f"dev: signature's deviation (max {MAX_DEVIATION:g})", "map / lr: not the signed map / LR",
                     "alt./chg.: LR altered by channel / changed"]
        return "\n".join(rows)


def gradient(lr_frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """[h,w,3] 0..1 -> [H,W] float32: Sobel magnitude of the bicubic-upsampled, lightly smoothed luma."""
    grey = cv2.cvtColor(np.ascontiguousarray(lr_frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    up = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), 1.0)
    gx = cv2.Sobel(up, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(up, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _levels(g: np.ndarray, edges: np.ndarray, m: int, moves):
    """Mean of ``g`` under the map at its place and moved by each of ``moves`` (border ``m`` left
    out), or None when the map has no pixel inside."""
    h, w = g.shape
    core = edges[m:h - m, m:w - m] > 0
    if not core.any():
        return None
    # the map moved by (dx, dy): its pixel (y, x) now reads g at (y + dy, x + dx)
    lv = [float(g[m + dy:h - m + dy, m + dx:w - m + dx][core].mean()) for dx, dy in ((0, 0),) + tuple(moves)]
    return lv[0], np.array(lv[1:]), float(g[m:h - m, m:w - m].mean()) + 1e-12


def scores(g: np.ndarray, edges: np.ndarray) -> Tuple[float, float, float]:
    """(level, peak, z) of one edge map [H,W] on one gradient map [H,W] (see the module doc)."""
    near = _levels(g, edges, MARGIN, SHIFTS)
    if near is None:
        return float("nan"), float("nan"), float("nan")
    own, moved, mean = near
    far = _levels(g, edges, FAR_MARGIN, FAR) if min(g.shape) > 2 * FAR_MARGIN + 1 else None
    z = float("nan") if far is None else (far[0] - far[1].mean()) / (far[1].std() + 1e-6 * far[2])
    return own / mean, own / (moved.max() + 1e-12), float(z)


def _inputs(lr, edges) -> Tuple[np.ndarray, np.ndarray]:
    """-> lr [T,h,w,3] float32, edges [T or 1,H,W], checked against each other."""
    lr = np.asarray(lr, dtype=np.float32)
    if lr.ndim == 3:
        lr = lr[None]
    edges = np.asarray(edges)
    if edges.ndim == 2:
        edges = edges[None]
    if edges.ndim == 4 and edges.shape[-1] == 1:
        edges = edges[..., 0]
    if lr.ndim != 4 or lr.shape[-1] != 3 or edges.ndim != 3:
        raise ValueError(f"gate: expected lr [T,h,w,3] and edges [T,H,W], got {lr.shape} and {edges.shape}")
    t, h, w, _ = lr.shape
    if edges.shape[0] not in (1, t):
        raise ValueError(f"gate: {edges.shape[0]} edge maps for {t} frames; give one map or one per frame")
    H, W = edges.shape[1:]
    if H % h or W % w or H // h != W // w or H < h:
        raise ValueError(f"gate: edge maps {W}x{H} are not an integer multiple of the LR frames {w}x{h}")
    return lr, edges


def check_edges(lr: np.ndarray, edges: np.ndarray, min_level: float = MIN_LEVEL,
                min_peak: float = MIN_PEAK, min_z: float = MIN_Z, min_z_peak: float = MIN_Z_PEAK,
                signature: Optional[Bitstream] = None, max_deviation: float = MAX_DEVIATION) -> GateResult:
    """Gate decoded edge maps ``edges`` [T,H,W] (or one [H,W]; a single map serves every frame) against
    the received LR frames ``lr`` [T,h,w,3] float 0..1 (H, W a multiple of h, w). With the sender's
    ``signature`` (:func:`sign`) the map must be the one signed, and the LR is checked by the signed
    levels, for another scene or by the blind tests, as the module doc says."""
    lr, edges = _inputs(lr, edges)
    t = len(lr)
    H, W = edges.shape[1:]
    sent = None if signature is None else read_signature(signature, t)
    if signature is not None and tuple(signature.shape[1:3]) != (H, W):
        raise ValueError(f"gate: the signature is for {signature.shape[2]}x{signature.shape[1]} maps, the edges are "
                         f"{W}x{H}; connect the signature of these maps")
    acc, lev, pk, zs = np.zeros(t, bool), np.zeros(t), np.zeros(t), np.zeros(t)
    dev, altered, map_ok = np.full(t, np.nan), np.zeros(t, bool), np.ones(t, bool)
    changed = np.zeros(t, bool)
    for i in range(t):
        e = edges[i if edges.shape[0] == t else 0]
        g = gradient(lr[i], (H, W))
        lv, p, z = scores(g, e)
        lev[i], pk[i], zs[i] = lv, p, z
        acc[i] = bool(np.isnan(lv) or (lv >= min_level and p >= min_peak) or (z >= min_z and p >= min_z_peak))
        if sent is None:
            continue
        if sent[i] is None:     # the sender sent no edges here: any the receiver holds are not its
            dev[i] = 0.0 if np.isnan(lv) else np.inf
            acc[i] = map_ok[i] = bool(np.isnan(lv))
            continue
        if map_crc(e) != sent[i].crc:    # moved, damaged, another frame's: not the map the sender made
            dev[i], acc[i], map_ok[i] = np.inf, False, False
            continue
        fp = fingerprint(lr[i])
        if _altered(fp, sent[i].fingerprint):
            sfp = sent[i].fingerprint
            if np.any(np.abs(fp[1:3].astype(np.float64) - sfp[1:3]) > CHANNEL_CHANGE * np.maximum(sfp[1:3], 1.0 / 255)):
                altered[i] = True       # the channel's doing: the map's CRC has decided
                acc[i] = abs(float(fp[0]) - sfp[0]) <= MAX_FOREIGN_LUMA
            else:               # the LR itself changed after coding: do the levels still keep their pattern?
                changed[i] = True
                dev[i] = _pattern_change(_levels_signed(g, e), sent[i].levels)
                acc[i] = bool(dev[i] <= MAX_PATTERN_CHANGE)
            continue
        own = _levels_signed(g, e)
        dev[i] = np.inf if own is None else float(np.abs(own - sent[i].levels).max())
        acc[i] = bool(dev[i] <= max_deviation)
        if not acc[i]:          # not as coded after all (a mild filter): the pattern may still hold
            pattern = _pattern_change(own, sent[i].levels)
            if pattern <= MAX_PATTERN_CHANGE:
                changed[i], dev[i], acc[i] = True, pattern, True
    signed = sent is not None
    return GateResult(acc, lev, pk, zs, deviation=dev if signed else None, altered=altered if signed else None,
                      map_ok=map_ok if signed else None, changed=changed if signed else None)


class Signed(NamedTuple):
    """One frame's signature record: ``fingerprint`` [5] and ``levels`` [9] float64, ``crc`` (int)."""
    fingerprint: np.ndarray
    levels: np.ndarray
    crc: int


def map_crc(edges: np.ndarray) -> int:
    """CRC-32 of an edge map [H,W] (nonzero = edge): its size and its bits, row by row."""
    e = np.asarray(edges) > 0
    return zlib.crc32(np.packbits(e, axis=1).tobytes(), zlib.crc32(np.array(e.shape, ">u4").tobytes()))


def fingerprint(lr_frame: np.ndarray) -> np.ndarray:
    """[h,w,3] 0..1 -> [5] float16 values: mean luma, Immerkaer's noise sigma, mean gradient of the
    luma at LR scale, after a Gaussian of 1 and of 2 LR px. Channel noise raises the fine bands and
    blur lowers them, so an altered LR moves at least one of them; another JPEG decoder does not."""
    frame = np.ascontiguousarray(lr_frame, dtype=np.float32)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    vals = [float(grey.mean()), float(noise_level(torch.from_numpy(frame).permute(2, 0, 1)[None])[0])]
    for sigma in (0.0, 1.0, 2.0):
        x = cv2.GaussianBlur(grey, (0, 0), sigma) if sigma else grey
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3)
        vals.append(float(np.sqrt(gx * gx + gy * gy).mean()))
    return np.array(vals, np.float16)


def _altered(fp: np.ndarray, sent: np.ndarray) -> bool:
    fp, sent = fp.astype(np.float64), sent.astype(np.float64)
    if abs(fp[0] - sent[0]) > MAX_LUMA_CHANGE:
        return True
    return bool(np.any(np.abs(fp[1:] - sent[1:]) > MAX_ALTERATION * np.maximum(sent[1:], 1.0 / 255)))


def _pattern_change(own: Optional[np.ndarray], signed: np.ndarray) -> float:
    """Coefficient of variation of the received nine levels ``own`` over the signed ones (inf: none)."""
    if own is None:
        return float("inf")
    ratio = own / np.maximum(signed, 1.0 / LEVEL_STEPS)
    return float(ratio.std() / max(ratio.mean(), 1e-9))


def _levels_signed(g: np.ndarray, edges: np.ndarray) -> Optional[np.ndarray]:
    """The map's nine signed levels on gradient ``g`` as transmitted, None without edges."""
    near = _levels(g, edges, MARGIN, SIGN_MOVES[1:])
    if near is None:
        return None
    own, moved, mean = near
    return _quantise(np.r_[own, moved] / (mean + SIGN_FLOOR))


def _quantise(levels: np.ndarray) -> np.ndarray:
    """Levels as transmitted: 1/4096 steps, 0..16 (both ends round alike, so only real change counts)."""
    return np.round(np.clip(levels, 0.0, LEVEL_MAX) * LEVEL_STEPS) / LEVEL_STEPS


def sign(decoded_lr: np.ndarray, edges: np.ndarray, fps: float = 30.0) -> Bitstream:
    """The sender's signature of edge maps ``edges`` [T,H,W] against the base layer as the receiver
    decodes it, ``decoded_lr`` [T,h,w,3] 0..1 (before any channel): per frame 32 bytes (the
    fingerprint as five big-endian float16, the nine levels as big-endian uint16 in 1/4096 steps, the
    map's CRC-32 as big-endian uint32), or none for a frame without edges."""
    lr, edges = _inputs(decoded_lr, edges)
    H, W = edges.shape[1:]
    payload = []
    for i in range(len(lr)):
        e = edges[i if edges.shape[0] == len(lr) else 0]
        lv = _levels_signed(gradient(lr[i], (H, W)), e)
        payload.append(b"" if lv is None else fingerprint(lr[i]).astype(">f2").tobytes()
                       + np.round(lv * LEVEL_STEPS).astype(">u2").tobytes() + map_crc(e).to_bytes(4, "big"))
    return Bitstream(SIGNATURE_CODEC, tuple(payload), (len(lr), H, W, 1), fps,
                     dict(moves=len(SIGN_MOVES), floor=SIGN_FLOOR))


def signature_nbytes(edges: np.ndarray) -> int:
    """Bytes :func:`sign` writes for edge maps [T,H,W] (a frame without edges inside the border: 0)."""
    edges = np.asarray(edges)
    edges = edges[None] if edges.ndim == 2 else edges
    core = edges[:, MARGIN:edges.shape[1] - MARGIN, MARGIN:edges.shape[2] - MARGIN] > 0
    return RECORD_BYTES * int(core.reshape(len(edges), -1).any(axis=1).sum())


def read_signature(stream: Bitstream, frames: int) -> list:
    """A ``gate-signature`` stream -> per frame a :class:`Signed` record, or None (no edges)."""
    if not isinstance(stream, Bitstream) or stream.codec != SIGNATURE_CODEC:
        raise ValueError(f"gate: signature must be a {SIGNATURE_CODEC!r} bitstream from the sender, got "
                         f"{getattr(stream, 'codec', type(stream).__name__)!r}")
    if len(stream.payload) != frames:
        raise ValueError(f"gate: the signature covers {len(stream.payload)} frame(s), the LR has {frames}; "
                         f"connect the signature of the same clip")
    out = []
    for i, rec in enumerate(stream.payload):
        if len(rec) not in (0, RECORD_BYTES):
            raise ValueError(f"gate: signature record of frame {i} has {len(rec)} bytes, expected 0 or "
                             f"{RECORD_BYTES}; the stream is damaged")
        if not rec:
            out.append(None)
            continue
        n, m = 2 * FINGERPRINT, RECORD_BYTES - 4
        fp = np.frombuffer(rec[:n], ">f2").astype(np.float64)
        if not np.all(np.isfinite(fp)):
            raise ValueError(f"gate: signature record of frame {i} holds non-finite values; the stream is damaged")
        out.append(Signed(fp, np.frombuffer(rec[n:m], ">u2").astype(np.float64) / LEVEL_STEPS,
                          int.from_bytes(rec[m:], "big")))
    return out


def inconsistency(lr: np.ndarray, sr_with: np.ndarray, sr_without: np.ndarray) -> np.ndarray:
    """Second stage, per frame: how much worse the with-metadata output fits the received LR than the
    pixel-only output, both brought back to LR size by the link's x4 bicubic downscale:
    MSE(down(sr_with), lr) / MSE(down(sr_without), lr). ``lr`` [T,h,w,3], outputs [T,H,W,3]."""
    from ..codec.resize import downscale
    lr = np.asarray(lr, dtype=np.float32)
    s = sr_with.shape[1] // lr.shape[1]
    d1 = ((downscale(np.asarray(sr_with, np.float32), s, "bicubic") - lr) ** 2).mean(axis=(1, 2, 3))
    d0 = ((downscale(np.asarray(sr_without, np.float32), s, "bicubic") - lr) ** 2).mean(axis=(1, 2, 3))
    return (d1 / np.maximum(d0, 1e-12)).astype(np.float64)


def second_stage(result: GateResult, ratio: np.ndarray, max_ratio: float = MAX_INCONSISTENCY) -> GateResult:
    """``result`` with the frames whose with-metadata output fits the LR more than ``max_ratio``
    worse than pixel-only (:func:`inconsistency`; NaN = not run, kept as decided) rejected too."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if ratio.shape != result.accepted.shape:
        raise ValueError(f"gate: {ratio.shape[0]} consistency ratios for {result.accepted.shape[0]} frames")
    keep = result.accepted & ~(ratio > max_ratio)
    return GateResult(keep, result.level, result.peak, result.z, ratio, result.deviation, result.altered,
                      result.map_ok, result.changed)
