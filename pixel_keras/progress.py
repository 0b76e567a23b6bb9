"""Progress of a long job, shown to suit where it goes: Keras' `Progbar` on a terminal, and a plain
line every few seconds anywhere else (a log file, a pipe, CI). Progbar redraws its line with
carriage returns and ANSI codes on every POSIX stream (it takes `"posix" in sys.modules` as a
dynamic display), which fills a log with escape codes."""

import sys
import time

# Seconds between two plain lines (the last one, at the end, is always written).
PLAIN_LINE_EVERY_SECONDS = 5.0


class ProgressReport:
    """`update(done)` of `total` units of work: a Progbar where `stream` is a terminal, else a line
    such as `120/400 steps (30%), 12.0 s, about 28 s left` at most every `every` seconds.

    Args:
        total: the units of the whole job.
        unit: what one unit is, singular ("step", "image").
        stream: where the progress goes (default: `sys.stdout` at the time of each update).
        every: seconds between plain lines.
    """

    def __init__(self, total, unit, stream=None, every=PLAIN_LINE_EVERY_SECONDS):
        self.total, self.unit, self.stream, self.every = int(total), unit, stream, every
        self.started = time.monotonic()
        self._bar = self._shown_at = self._shown = None

    def update(self, done):
        """Report `done` units (clipped to the total)."""
        done = min(int(done), self.total)
        stream = self.stream or sys.stdout
        if getattr(stream, "isatty", lambda: False)():
            if self._bar is None:
                import keras

                self._bar = keras.utils.Progbar(self.total, unit_name=self.unit)
            self._bar.update(done)
            return
        now = time.monotonic()
        if done == self._shown or (done < self.total and self._shown_at is not None
                                   and now - self._shown_at < self.every):
            return
        self._shown_at, self._shown = now, done
        elapsed = now - self.started
        left = f", about {elapsed * (self.total - done) / done:.0f} s left" if 0 < done < self.total else ""
        print(f"{done}/{self.total} {self.unit}s ({100.0 * done / max(self.total, 1):.0f}%), {elapsed:.1f} s{left}",
              file=stream, flush=True)
