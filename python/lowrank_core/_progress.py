"""A dependency-free progress bar on stderr."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``with ProgressBar(total, "label") as bar: ... bar.update(1, note="loss 0.1")``.

    Draws ``label [#####.....] done/total  note  elapsed, ~left`` on one line of
    stderr, at most ten times a second; ``enabled=False`` draws nothing. ``set(done)``
    moves to a point of the work that may lie between steps (a fraction of an epoch);
    the bar never moves back. ``close()`` (or leaving the ``with`` block) draws the
    last state and ends the line.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool = True, stream=None,
                 width: int = 24):
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.note = ""
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self):
        self._draw(force=True)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, steps: int = 1, note: str | None = None) -> None:
        self.set(self.done + steps, note)

    def set(self, done: float, note: str | None = None) -> None:
        self.done = min(max(self.done, done), self.total)
        if note is not None:
            self.note = note
        self._draw()

    def close(self) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        elapsed = now - self._start
        filled = int(self.width * self.done / self.total)
        if self.done >= self.total:
            left_text = "done"
        elif self.done > 0:
            left_text = f"~{elapsed / self.done * (self.total - self.done):.0f}s left"
        else:
            left_text = "?s left"
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{int(self.done)}/{self.total}  {self.note}  {elapsed:.0f}s, "
                          f"{left_text}   ")
        self.stream.flush()
