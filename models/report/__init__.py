"""Reports of results, drawn and written one way for the main job and the nodes: RD figures
(``rd_figure``), the main job's side-by-side picture and its text/JSON form."""
from .rd_figure import draw_rd, plan_image, rd_image, rd_panels
from .side_by_side import matched_pair, side_by_side
from .text import jsonable, summary_lines

__all__ = ["draw_rd", "plan_image", "rd_image", "rd_panels", "matched_pair", "side_by_side", "summary_lines", "jsonable"]
