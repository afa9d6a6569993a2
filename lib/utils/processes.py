"""DataLoader workers that end with the process that started them, even when it is killed with SIGKILL."""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1        # linux/prctl.h


def die_with_parent(worker_id: int, parent_pid: int) -> None:
    """worker_init_fn of the DataLoaders: ask Linux to send this worker SIGKILL when its parent dies.

    Paddle's workers notice a dead parent only between batches (and a blocked one not at all), so after a
    SIGKILL of train.py they lived on holding hundreds of MB each. Elsewhere (macOS, Windows) nothing is done.
    """
    if not sys.platform.startswith('linux'):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:      # the parent died before prctl took effect
        os._exit(1)
