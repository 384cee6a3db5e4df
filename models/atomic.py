"""Atomic file output: a file is either the complete new version or the old one, never half.

Everything the pack writes for a user to keep (reports, figures, previews, weights, JSON) goes
through :func:`write_with`: the bytes go to a temporary file in the same folder, are flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on one filesystem). A full disk or a
crash leaves the previous file intact and no partial file behind.
"""
import io
import json
import os
import tempfile
from typing import BinaryIO, Callable


def _umask() -> int:
    """The process umask, read without changing it where the OS says it (Linux /proc); elsewhere by
    setting and restoring it (a moment in which another thread's new file would get no umask)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _mode_for(path: str) -> int:
    """The permissions the finished file gets: the old file's, or what ``open()`` would give a new
    one (0666 less the umask). mkstemp makes its file 0600, which would leave a report or a figure
    unreadable to the group, another account or a container sharing the folder."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def write_with(path: str, write: Callable[[BinaryIO], None]) -> str:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it into place.

    Returns ``path``. On any error the temporary file is removed and the old ``path`` kept."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # the rename itself survives a power cut only once the folder entry is on disk
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some filesystems refuse fsync on a folder; the file itself is complete
        pass
    return path


def write_bytes(path: str, data: bytes) -> str:
    return write_with(path, lambda f: f.write(data))


def write_json(path: str, obj, **kw) -> str:
    """``json.dumps(obj)`` written atomically; the text is built first, so a value that cannot be
    serialised fails before anything is touched."""
    text = json.dumps(obj, **kw) + "\n"
    return write_bytes(path, text.encode("utf-8"))


def save_image(path: str, image, **kw) -> str:
    """A PIL image written atomically (format from the file extension, options as ``Image.save``)."""
    fmt = kw.pop("format", None) or {".jpg": "JPEG", ".jpeg": "JPEG"}.get(
        os.path.splitext(path)[1].lower(), os.path.splitext(path)[1][1:].upper() or "PNG")
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return write_bytes(path, buf.getvalue())


def save_figure(path: str, fig, **kw) -> str:
    """A matplotlib figure written atomically (``fig.savefig`` options)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=os.path.splitext(path)[1][1:].lower() or "png", **kw)
    return write_bytes(path, buf.getvalue())


def check_writable(folder: str) -> str:
    """Make ``folder`` (and parents) if needed and prove a file can be written in it, before any
    long work. Raises ``ValueError`` naming the folder and the cause."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is a file, not a folder; give a folder to write the results into")
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write_test_")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write into {folder!r} ({e.strerror or e}); pick a writable folder") from None
    return folder
