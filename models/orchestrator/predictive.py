"""The predictive orchestrator: choose without running the receiver, from a gain table learned on
operational runs.

A sender without the receiver can still measure, per candidate, the real bits (it codes the base
layer and the metadata) and the quality of the bicubic upscale of the base layer as received
(``bicubic_<metric>`` in the operational rows). What it lacks is the receiver's gain over that
baseline; the table holds it, per content bucket (``models/metadata/content.py``), channel regime,
metadata option and base-layer quality, as the mean over the segments it was fitted on:

    gain[regime][bucket][option][quality] = mean(metric(receiver) - metric(bicubic))

(shrunk towards the mean over all buckets, :data:`SHRINK`, since a bucket's mean over one or two
segments is mostly their noise).

A prediction is ``bicubic + gain`` (the bucket's entry, else the mean over all buckets, ``"*"``);
the choice is then the operational one (``operational.choose``) on the predicted distortions. The
table is JSON (``TABLE_PATH`` ships one fitted by ``run.py --experiment orchestrate``).
"""
import json
import os
from collections import defaultdict
from typing import Dict, Optional

import numpy as np

from .. import atomic
from .operational import SIGNAL_BITS, Table, choose

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gain_table.json")
ALL = "*"
SHRINK = 2.0   # on the mixed set, plain bucket means (1-2 segments each) chose worse than the all-bucket mean
VERSION = 1


def fit(tables: Dict[str, Table], labels: Dict[str, str], key: str = "psnr", receiver: str = "",
        segments: Optional[list] = None, shrink: float = SHRINK) -> dict:
    """Gain table from operational tables ``{regime: Table}`` and each segment's bucket ``labels``;
    ``segments`` restricts the fit to those names (the rest stay held out). A bucket's entry is its
    mean shrunk towards the all-bucket mean as if ``shrink`` segments of the latter were added."""
    out = dict(version=VERSION, metric=key, receiver=receiver, shrink=shrink, regimes={}, fitted_on={})
    for regime, table in tables.items():
        acc = defaultdict(list)
        names = [n for n in table if segments is None or n in segments]
        if not names:
            raise ValueError("fit: no segment to fit on")
        for name in names:
            for row in table[name]:
                if f"bicubic_{key}" not in row:
                    raise ValueError(f"fit: segment {name!r} rows lack bicubic_{key}; rerun evaluate")
                g = row[key] - row[f"bicubic_{key}"]
                for b in (labels.get(name, ALL), ALL):
                    acc[(b, row["option"], str(row["quality"]))].append(g)
        reg = {}
        for (b, o, q), gs in sorted(acc.items()):
            g = float(np.mean(gs))
            if b != ALL:  # shrunk towards the all-bucket mean: a bucket fitted on one segment is noise
                n = len(gs)
                g = (n * g + shrink * float(np.mean(acc[(ALL, o, q)]))) / (n + shrink)
            reg.setdefault(b, {}).setdefault(o, {})[q] = round(g, 4)
        out["regimes"][regime] = reg
        out["fitted_on"][regime] = {b: sorted(n for n in names if labels.get(n, ALL) == b)
                                    for b in sorted({labels.get(n, ALL) for n in names})}
    return out


def check(gains: dict, where: str = "gain table") -> dict:
    """A loaded table's shape, with an error that names the fix."""
    if not isinstance(gains, dict) or gains.get("version") != VERSION or not isinstance(gains.get("regimes"), dict):
        raise ValueError(f"{where}: not a version-{VERSION} MetaVSR gain table; refit it with "
                         f"run.py --experiment orchestrate")
    return gains


def load(path: str = TABLE_PATH) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return check(json.load(f), path)
    except (OSError, ValueError) as e:
        if isinstance(e, ValueError) and "gain table" in str(e):
            raise
        raise ValueError(f"{path}: cannot read the gain table ({e}); refit it with run.py --experiment "
                         f"orchestrate") from e


def save(gains: dict, path: str) -> str:
    return atomic.write_json(path, check(gains), indent=1, sort_keys=True)


def predicted(table: Table, gains: dict, regime: str, labels: Dict[str, str]) -> Table:
    """The rows with the receiver's metric replaced by the prediction ``bicubic + gain``."""
    key = gains["metric"]
    if regime not in gains["regimes"]:
        raise ValueError(f"the gain table has no {regime} regime (it has {sorted(gains['regimes'])})")
    reg = gains["regimes"][regime]
    out = {}
    for name, rows in table.items():
        bucket = labels.get(name, ALL)
        new = []
        for row in rows:
            q = str(row["quality"])
            g = reg.get(bucket, {}).get(row["option"], {}).get(q)
            if g is None:
                g = reg.get(ALL, {}).get(row["option"], {}).get(q)
            if g is None:
                raise ValueError(f"the gain table has no entry for {row['option']} at quality {q} "
                                 f"({regime}); refit it with these candidates")
            new.append(dict(row, **{key: row[f"bicubic_{key}"] + g}))
        out[name] = new
    return out


def choose_predicted(table: Table, gains: dict, regime: str, labels: Dict[str, str], lam: float,
                     signal_bits: int = SIGNAL_BITS) -> Dict[str, int]:
    """Per segment, the candidate of least predicted J (no receiver run)."""
    return choose(predicted(table, gains, regime, labels), lam, gains["metric"], signal_bits)
