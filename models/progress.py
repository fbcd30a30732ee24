"""Minimal stderr progress reporting (stdlib only).

On a TTY a single-line bar is redrawn in place; otherwise one line is printed
when a step starts and one when it ends, so logs stay readable.
"""

from __future__ import annotations

import sys
import time

_BAR_WIDTH = 30


class Progress:
    """Progress of one step measured in arbitrary units (bytes, tensors...)."""

    def __init__(self, label: str, total: int, unit: str = "B") -> None:
        self.label = label
        self.total = max(int(total), 1)
        self.unit = unit
        self.done = 0
        self._tty = sys.stderr.isatty()
        self._last_draw = 0.0
        self._start = time.monotonic()
        if not self._tty:
            print(f"  {label} ...", file=sys.stderr, flush=True)
        else:
            self._draw()

    def advance(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        now = time.monotonic()
        if self._tty and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        frac = self.done / self.total
        filled = int(frac * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        sys.stderr.write(f"\r  {self.label:<28.28} [{bar}] {frac * 100:5.1f}%")
        sys.stderr.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self._start
        if self._tty:
            self.done = self.total
            self._draw()
            sys.stderr.write(f" {elapsed:5.1f}s\n")
            sys.stderr.flush()
        else:
            print(f"  {self.label} done ({elapsed:.1f}s)", file=sys.stderr, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
