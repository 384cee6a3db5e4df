"""What the streaming receiver is guided by: the previous HR output moved onto the current frame.

Flow is OpenCV DIS on the LR frames (cheap, no weights; the same estimator the temporal metrics use),
both ways. The previous frame is trusted where the forward-backward check of Ruder et al. holds
(occlusions and pixels entering the frame fail it) *and* the warped previous LR frame matches the
current one (a flow can be consistent both ways and still wrong: a scene cut's flows often are); a
frame with too little left trusted is a cut, and nothing is carried over. The training script calls
the same functions, so the network learns with the flow errors it will meet.

    flows(lr_prev, lr_cur)   -> (cur -> prev flow [h,w,2], validity [h,w] 0/1)   LR, numpy
    guidance(hr_prev, flow, valid, scale) -> (warped [N,3,sH,sW], valid [N,1,sH,sW])   torch
"""
import numpy as np
import torch
import torch.nn.functional as F

from ...ops.noise import noise_level
from ...metrics.temporal import dis_flow, non_occlusion_mask, warp_image
from ..stream.flow import to_hr, warp

# a cut: the previous frame explains less than this share of the current one
MIN_VALID = 0.3
# photometric check: warped previous grey within this of the current (8-bit levels), plus the
# difference two noisy frames have anyway (2.5 x sqrt 2 x the current frame's noise estimate)
MAX_GREY_ERROR = 16.0


def flows(grey_prev: np.ndarray, grey_cur: np.ndarray):
    """[h,w] uint8 grey LR frames -> (flow [h,w,2] float32: pixel p of the current frame was at
    p + flow(p) in the previous one; validity [h,w] float32, 1 where that holds both ways)."""
    back = dis_flow(grey_cur, grey_prev)      # current -> previous: where to read the previous frame
    fwd = dis_flow(grey_prev, grey_cur)
    valid = non_occlusion_mask(back, fwd)
    cur = grey_cur.astype(np.float32)
    sigma = float(noise_level(torch.from_numpy(cur / 255.0)[None, None].expand(1, 3, *cur.shape))[0]) * 255.0
    err = np.abs(warp_image(grey_prev.astype(np.float32), back) - cur)
    valid *= (err <= MAX_GREY_ERROR + 2.5 * np.sqrt(2.0) * sigma).astype(np.float32)
    if valid.mean() < MIN_VALID:              # a scene cut: nothing to carry over
        valid[:] = 0
    return back, valid


def guidance(hr_prev: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor, scale: int):
    """The previous output [N,3,sh,sw] warped onto the current frame by LR ``flow`` [N,h,w,2], and the
    LR ``valid`` [N,h,w] mask brought to HR (nearest): ``(warped, valid [N,1,sh,sw])``."""
    warped = warp(hr_prev, to_hr(flow, scale).to(hr_prev.dtype))
    v = F.interpolate(valid[:, None].to(hr_prev.dtype), scale_factor=scale, mode="nearest")
    return warped, v
