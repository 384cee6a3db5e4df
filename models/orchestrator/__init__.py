"""Sender-side choice of metadata under a bit budget, and the receiver's verification gate.

    candidates.py   what a segment can be sent as (base quality x metadata option), sending an option
    operational.py  run the receiver on every candidate (cached), J = D + lambda R, budget by bisection
    predictive.py   choose without the receiver from a gain table fitted on operational runs
    clip.py         the orchestrator on one clip (scene cuts, choice, what crosses the link)
    study.py        run.py --experiment orchestrate; mixed_set.py its registry-made test set
    gate.py         the receiver's verification gate
"""
from .gate import GateResult, check_edges

__all__ = ["GateResult", "check_edges"]
