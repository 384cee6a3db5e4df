"""Rate-distortion figures, drawn one way for the main job (``rd.png``) and the RD Curve node.

``draw_rd(ax, curves, ...)`` puts curves on a matplotlib axis: each a dict with ``name``, ``rates``,
``qualities`` and ``style`` ("line": markers joined by increasing rate; "points": a scatter; "hull":
a dashed line). The metric's direction flips the quality axis for distances, so "better" is always
up. Figures are built on the Agg canvas without pyplot state, so nodes can draw from any thread.
"""
from typing import List, Optional, Sequence

import numpy as np

from ..metrics import distortion

_MARKERS = "osD^v<>p"


def _figure(width_px: int, height_px: int, dpi: int = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def draw_rd(ax, curves: Sequence[dict], higher_is_better: bool = True, log_rate: bool = True,
            xlabel: str = "bits per HR pixel", ylabel: str = "quality", title: str = "",
            note: Optional[str] = None, font: float = 11.0):
    """Draw RD ``curves`` on ``ax`` (see the module doc)."""
    for k, c in enumerate(curves):
        order = np.argsort(c["rates"], kind="stable")
        r = np.asarray(c["rates"], dtype=np.float64)[order]
        q = np.asarray(c["qualities"], dtype=np.float64)[order]
        style = c.get("style", "line")
        colour = c.get("color")
        if style == "points":
            ax.scatter(r, q, s=c.get("size", 9), c=colour or "tab:red", alpha=c.get("alpha", 0.35), label=c["name"])
        elif style == "hull":
            ax.plot(r, q, "--", lw=c.get("lw", 1.2), alpha=0.8, color=colour or "k", label=c["name"])
        else:
            ax.plot(r, q, marker=c.get("marker", _MARKERS[k % len(_MARKERS)]), linestyle=c.get("linestyle", "-"),
                    markersize=c.get("ms", 6), linewidth=c.get("lw", 2.0), color=colour, label=c["name"])
    if log_rate:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        ax.set_xscale("log")
        # plain numbers (0.5, 1, 2) read better than 5x10^-1 on rate axes
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if not higher_is_better:
        ax.invert_yaxis()
    ax.set_xlabel(xlabel + (" (log scale)" if log_rate else ""), fontsize=font + 1)
    ax.set_ylabel(ylabel, fontsize=font + 1)
    ax.tick_params(labelsize=font)
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=font + 2)
    if note:
        ax.text(0.97, 0.04, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=font - 2,
                bbox=dict(fc="white", ec="0.7"))
    ax.legend(fontsize=font - 2, loc="best", framealpha=0.9)


def rd_image(curves: Sequence[dict], width: int, height: int, **kw) -> np.ndarray:
    """One RD panel as an ``[H,W,3]`` float32 0..1 image (the RD Curve node's output)."""
    fig = _figure(width, height)
    draw_rd(fig.add_subplot(1, 1, 1), curves, **kw)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(np.float32) / 255.0


def plan_image(plan, width: int = 900, height: int = 380) -> np.ndarray:
    """An orchestrator's :class:`~models.orchestrator.clip.Plan` as one ``[H,W,3]`` float32 0..1 image:
    RD of every fixed choice against the orchestrated curve (left), J of every candidate per segment
    at the plan's lambda, the chosen one dotted (right). The MetaVSR Orchestrate Metadata node's plot."""
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 2, 1)
    curves = [dict(name=label, marker="o", ms=3, lw=1.0, rates=[p["bpp"] for p in pts],
                   qualities=[p["psnr"] for p in pts]) for label, pts in plan.fixed.items()]
    curves.append(dict(name="orchestrated", marker="^", ms=4, lw=2.2, color="k",
                       rates=[p["bpp"] for p in plan.curve], qualities=[p["psnr"] for p in plan.curve]))
    draw_rd(ax, curves, xlabel="bits per HR pixel", ylabel="PSNR (dB)", title="fixed vs orchestrated", font=8.0)
    pixels = sum(rows[0]["pixels"] for rows in plan.table.values())
    chosen_bpp = plan.bits / pixels
    ax.axvline(chosen_bpp, color="tab:red", lw=1, ls=":")
    ax2 = fig.add_subplot(1, 2, 2)
    for (name, rows), seg in zip(plan.table.items(), plan.segments):
        j = [float(distortion(r["psnr"], "psnr")) * r["pixels"] + plan.lam * r["bits"] for r in rows]
        j = np.array(j) / rows[0]["pixels"]
        line, = ax2.plot(j, lw=1.0, label=f"{name} {seg['bucket']}")
        k = [r["candidate"] for r in rows].index(seg["choice"])
        ax2.plot([k], [j[k]], "o", color=line.get_color(), ms=6)
    ax2.set_title(f"J per HR pixel at lambda {plan.lam:.3g} (dot: chosen)", fontsize=9)
    ax2.set_xlabel("candidate (quality-major, options within)", fontsize=8)
    ax2.tick_params(labelsize=7)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(np.float32) / 255.0


def rd_panels(panels: List[dict], path: str, suptitle: str = "", dpi: int = 110):
    """Side-by-side RD panels (one per channel regime in the main job) written atomically as a PNG;
    each panel is ``draw_rd``'s keyword arguments."""
    from ..atomic import save_figure
    fig = _figure(int(5.2 * dpi * len(panels)), int(4.3 * dpi), dpi)
    for i, p in enumerate(panels):
        draw_rd(fig.add_subplot(1, len(panels), i + 1), font=9.0, **p)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    save_figure(path, fig, dpi=dpi)
