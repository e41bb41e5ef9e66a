"""``njit`` for the solver kernels: cached on disk when numba can write a cache, compiled in memory when it cannot.

numba's ``cache=True`` refuses to decorate a function (``RuntimeError: cannot cache function ...: no locator
available``) when neither the package's ``__pycache__`` nor the user's cache directory is writable: a read-only
site-packages with no writable HOME. The kernels then compile in memory at their first call in each process
(``geoshare-opt warm-up`` cannot help there); set ``NUMBA_CACHE_DIR`` to a writable directory to cache them.
"""
from __future__ import annotations

from numba import njit as _njit


def njit(**options):
    """``numba.njit(cache=True, **options)``, falling back to ``cache=False`` when no cache can be written."""
    def decorate(fn):
        try:
            return _njit(cache=True, **options)(fn)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            return _njit(cache=False, **options)(fn)
    return decorate
