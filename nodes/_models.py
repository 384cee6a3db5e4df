"""What every loader node needs: the entries of its model folders and a cache of the last model.

Model folders are ComfyUI's (``folder_paths``, ``extra_model_paths.yaml`` honoured) or the pack's own
(``models/receivers/<family>/weights``); a cache entry is keyed by the file's path and modification
time plus the load settings, so replacing a file reloads it and a failed load is never cached.
"""
import os
import threading
from typing import Callable, Iterable, List

from ._comfy import model_folders


def entries(folders: Iterable[str], keep: Callable[[str], bool]) -> List[str]:
    """Names in ``folders`` (files or sub-folders) whose full path ``keep`` accepts, sorted, unique."""
    names = set()
    for root in folders:
        if os.path.isdir(root):
            names.update(n for n in os.listdir(root) if keep(os.path.join(root, n)))
    return sorted(names)


def find(name: str, folders: Iterable[str]):
    """The first ``folder/name`` that exists (an absolute path is taken as is), or None."""
    if os.path.isabs(name) and os.path.exists(name):
        return name
    for root in folders:
        path = os.path.join(root, name)
        if os.path.exists(path):
            return path
    return None


def comfy_folders(kind: str) -> List[str]:
    return model_folders(kind)


class ModelCache:
    """The last model a loader built, kept while its file and settings stay the same (weights are
    large: one entry per loader). Thread-safe; ``build`` runs outside any other loader's lock."""

    def __init__(self):
        self._key, self._model = None, None
        self._lock = threading.Lock()

    def get(self, path: str, settings: tuple, build: Callable[[], object]):
        key = (os.path.abspath(path), os.path.getmtime(path), settings)
        with self._lock:
            if key == self._key:
                return self._model
            self._key, self._model = None, None  # free the old weights before building the new ones
            model = build()
            self._key, self._model = key, model
            return model
