"""Stopping a run cleanly on SIGTERM / Ctrl-C."""
import os
import signal
from typing import Callable, Optional


class GracefulStop:
    """SIGTERM / Ctrl-C ask the loop to stop after the current iteration (or validation batch); a second Ctrl-C
    stops at once.

    Repeated SIGTERMs are not escalated: paddle.distributed.launch sends several within a second when
    it is itself terminated. A context manager, so the previous handlers come back when training returns.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_signal: Optional[Callable[[str], None]] = None):
        """`on_signal(name)` is called at once on the first signal, e.g. to log it; only in this process, not
        in forked DataLoader workers, which inherit the handler and receive Ctrl-C's SIGINT too."""
        self.signal_name = None
        self.on_signal = on_signal
        self._pid = os.getpid()
        self._previous = {}

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *_):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal_name and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
            if self.on_signal is not None and os.getpid() == self._pid:
                self.on_signal(self.signal_name)

    def __call__(self) -> bool:
        return self.signal_name is not None
