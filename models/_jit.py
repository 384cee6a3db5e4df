"""numba JIT with a pure-Python fallback, so hot loops run (slowly) where numba is missing.

``njit(...)`` compiles lazily on first call and caches to disk (``cache=True``): importing the pack
compiles nothing. Set ``METAVSR_NO_NUMBA=1`` to force the pure-Python path (the tests do, on small
inputs, to check both paths agree).
"""
import os

try:
    if os.environ.get("METAVSR_NO_NUMBA"):
        raise ImportError
    import numba as _numba
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None
    HAVE_NUMBA = False


def njit(*args, **kwargs):
    """``numba.njit(cache=True, ...)`` or the identity decorator without numba."""
    if HAVE_NUMBA:
        kwargs.setdefault("cache", True)
        return _numba.njit(*args, **kwargs)
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


# numba only recognises its own prange object inside compiled code
prange = _numba.prange if HAVE_NUMBA else range
