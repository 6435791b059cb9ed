"""UMAP with its numba kernels cached on disk, so that only the first process on a machine compiles them.

umap-learn compiles its kernels (exact neighbours, smooth k-NN distances, membership strengths, the layout's
epochs) with numba on first use and, unlike pynndescent, does not cache them: every process paid ~15 s on
this project's 2-core CPU before its first map (measured: a 180-point fit took 14.9 s in a fresh process,
0.2 s in the next one once cached). ``import_umap`` switches numba's own on-disk cache on for each of
umap's module-level kernels, as ``@numba.njit(cache=True)`` would. numba keeps the cache beside umap's
sources (``__pycache__``) or, where that is read-only, in the user's cache folder; it is written and read
only by this machine's own processes (the trust of a ``.pyc`` file), never taken from a bundle or upload.
"""

from __future__ import annotations

import threading
from types import ModuleType

_lock = threading.Lock()
_umap: ModuleType | None = None


def cached_kernels(module: ModuleType) -> list:
    """The numba-compiled functions defined at module level in ``module``."""
    from numba.core.registry import CPUDispatcher

    return [f for f in vars(module).values() if isinstance(f, CPUDispatcher)]


def import_umap() -> ModuleType:
    """``import umap`` (lazily: it pulls in numba) with on-disk caching on for its kernels; once a process."""
    global _umap
    with _lock:
        if _umap is None:
            import umap
            import umap.distances
            import umap.layouts
            import umap.umap_
            import umap.utils
            from numba.core.caching import NullCache

            for module in (umap.umap_, umap.utils, umap.layouts, umap.distances):
                for kernel in cached_kernels(module):
                    if isinstance(kernel._cache, NullCache):
                        kernel.enable_caching()
            _umap = umap
    return _umap
