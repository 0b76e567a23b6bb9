"""Test helper: a training process killed at a chosen moment (the kill-and-resume tests)."""

import signal
import time


def kill_once(process, ready, seconds=240):
    """SIGKILL `process` as soon as `ready()` holds; it must still be running until then."""
    deadline = time.time() + seconds
    while not ready() and time.time() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
