"""Write raster blocks from a background thread, so the next tile is computed while GDAL
compresses and writes the last ones (rasterio releases the GIL inside GDAL)."""
from __future__ import annotations

import queue
import threading

__all__ = ["BackgroundWriter"]


class BackgroundWriter:
    """``dst.write(block, window=window)`` on one worker thread, in the order given.

    At most ``pending`` blocks wait (memory stays bounded). A failed write is raised again in
    the caller's thread, by the next :meth:`write` or by :meth:`close`; nothing is written
    after it. Use as a context manager: leaving it waits for every write (and raises a
    failure); leaving it on an error stops the worker without writing the rest.
    """

    def __init__(self, dst, pending: int = 2):
        self._dst = dst
        self._queue: queue.Queue = queue.Queue(maxsize=pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sumdun-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    block, window = item
                    self._dst.write(block, window=window)
                except BaseException as err:  # handed to the caller's thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def write(self, block, window) -> None:
        """Queue ``block`` for ``window`` (waits while ``pending`` blocks are queued)."""
        self._raise()
        self._queue.put((block, window))

    def close(self) -> None:
        """Wait for every queued write; raise the first failure."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        self._error = self._error or exc      # skip whatever is still queued
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(None)
        self._thread.join()
