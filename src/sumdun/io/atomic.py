"""Write files under a temporary name, then rename, so a crash never leaves a partial file."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_parts(final: Path) -> list[Path]:
    """Remove the temporary files ``.<name>.<pid>.*.part*`` that runs killed while writing
    ``final`` left behind (their process is gone); a live writer's file is kept."""
    removed = []
    for q in final.parent.glob(f".{glob.escape(final.name)}.*.part*"):
        pid = q.name[len(final.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if q.is_dir():
                shutil.rmtree(q, ignore_errors=True)
            else:
                q.unlink(missing_ok=True)
            removed.append(q)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception (Ctrl-C included) the temporary file is removed and an existing ``path``
    is left untouched. The parent folder must exist.
    """
    final = Path(path)
    if not final.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {final.parent}")
    remove_stale_parts(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".part" + final.suffix,
                               dir=final.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
