"""numba JIT with a pure-Python fallback, so hot loops run (slowly) where numba is missing.

``njit(...)`` compiles lazily on first call and caches to disk (``cache=True``): importing the pack
compiles nothing. Set ``METAVSR_NO_NUMBA=1`` to force the pure-Python path (the tests do, on small
inputs, to check both paths agree).
"""
import hashlib
import os

try:
    if os.environ.get("METAVSR_NO_NUMBA", "") not in ("", "0"):
        raise ImportError("disabled by METAVSR_NO_NUMBA")
    import numba as _numba
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None
    HAVE_NUMBA = False


def _per_package(f):
    """Give ``f`` a cache name that includes the name the pack was imported under.

    numba names cache files after the source file and ``__qualname__`` only, but compiled code
    refers to the other jitted functions it calls by module name. The pack is imported as
    ``metavsr`` by scripts and tests and under its folder path by ComfyUI, so a shared cache
    written under one name fails to load under the other (ModuleNotFoundError).
    """
    package = f.__module__.split(".")[0]
    f.__qualname__ = f"{f.__qualname__}_{hashlib.sha1(package.encode()).hexdigest()[:8]}"
    return f


def njit(*args, nrt: bool = True, **kwargs):
    """``numba.njit(cache=True, ...)`` or the identity decorator without numba.

    nrt=False compiles a leaf function that allocates nothing without numba's reference counting:
    with it, every call increments and decrements each array argument atomically, which in the
    MQ coder's per-decision functions cost several times the decision itself (about 100 ns
    against 8 ns per decoded pixel, measured on noise).
    """
    if len(args) == 1 and callable(args[0]) and not kwargs and nrt:
        return njit()(args[0])
    if HAVE_NUMBA:
        kwargs.setdefault("cache", True)
        if not nrt:
            kwargs["_nrt"] = False
        return lambda f: _numba.njit(*args, **kwargs)(_per_package(f))
    return lambda f: f


# numba only recognises its own prange object inside compiled code
prange = _numba.prange if HAVE_NUMBA else range
