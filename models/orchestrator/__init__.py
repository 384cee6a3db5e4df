"""Sender-side choice of metadata under a bit budget, and the receiver's verification gate."""
from .gate import GateResult, check_edges

__all__ = ["GateResult", "check_edges"]
