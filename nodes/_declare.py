"""How a node declares its outputs: one ``(type, name, tooltip)`` triple per output, so the V1
API's three parallel tuples (``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_TOOLTIPS``) cannot drift
apart.

    RETURN_TYPES, RETURN_NAMES, OUTPUT_TOOLTIPS = outputs(("IMAGE", "images", "The frames."))
"""


def outputs(*triples):
    """``(type, name, tooltip)`` triples -> ``(RETURN_TYPES, RETURN_NAMES, OUTPUT_TOOLTIPS)``."""
    for t in triples:
        if len(t) != 3 or not all(isinstance(v, str) and v for v in t):
            raise ValueError(f"a node output is (type, name, tooltip), three non-empty strings; got {t!r}")
    return tuple(t[0] for t in triples), tuple(t[1] for t in triples), tuple(t[2] for t in triples)


# inputs several nodes take, declared once so their ranges and tooltips agree
FPS = ("FLOAT", {"default": 30.0, "min": 0.01, "max": 1000.0, "step": 0.01, "tooltip":
                 "Frame rate of the clip: the rate tables turn bits into kbps with it."})


def node(category, *triples, function="run"):
    """Class decorator: CATEGORY, FUNCTION, the outputs (:func:`outputs`) and DESCRIPTION from the
    class docstring (whitespace folded, so it reads as one paragraph in the frontend)."""
    def wrap(cls):
        cls.CATEGORY, cls.FUNCTION = category, function
        cls.RETURN_TYPES, cls.RETURN_NAMES, cls.OUTPUT_TOOLTIPS = outputs(*triples)
        cls.DESCRIPTION = " ".join((cls.__doc__ or "").split())
        return cls
    return wrap
