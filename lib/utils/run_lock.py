"""One training run per folder: a lock file that train.py takes before it writes anything in the run folder.

The lock is created with O_EXCL and holds the owner's pid and host. A second train.py on the same folder is
refused while that process lives; a lock left by a process that is gone (SIGKILL, power loss) is taken over.
"""
import json
import os
import socket
import time
from typing import Optional

from lib.utils.errors import UserError

LOCK_NAME = '.train.lock'


class RunLockedError(UserError, RuntimeError):
    """Another live train.py holds the run folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # exists, owned by another user
        return True
    return True


def _read_holder(path: str) -> Optional[dict]:
    """The lock's {'pid', 'host', ...}; None when it is gone; {} when it is empty or unreadable (its writer may
    be between the create and the write: read again a moment later)."""
    for attempt in range(3):
        try:
            with open(path) as f:
                holder = json.load(f)
            if isinstance(holder, dict) and isinstance(holder.get('pid'), int):
                return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return {}


class RunLock:
    """Context manager: `with RunLock(run_dir):` holds <run_dir>/.train.lock until the block exits."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.held = False

    def __enter__(self) -> 'RunLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        me = {'pid': os.getpid(), 'host': socket.gethostname(), 'started': time.strftime('%Y-%m-%d %H:%M:%S')}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale(me['host'])
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return
        raise RunLockedError(f'could not take {self.path}: other processes keep creating it. Check what else '
                             'trains into this folder.')

    def _take_over_if_stale(self, host: str) -> None:
        """Remove the lock when its process is gone; RunLockedError naming the holder when it lives."""
        holder = _read_holder(self.path)
        if holder is None:                      # released meanwhile: try again
            return
        folder = os.path.dirname(self.path)
        pid, holder_host = holder.get('pid'), holder.get('host')
        if pid is not None and holder_host == host and pid != os.getpid() and not _pid_alive(pid):
            stale = f'{self.path}.stale{os.getpid()}'
            try:                                # rename, not remove: of two processes taking over, one wins
                os.rename(self.path, stale)
            except FileNotFoundError:
                return
            taken = _read_holder(stale) or {}
            if taken.get('pid') not in (None, pid) and _pid_alive(taken['pid']):
                try:                            # a live process took it over just before: give it back
                    os.link(stale, self.path)
                except FileExistsError:
                    pass
            os.remove(stale)
            return
        if pid is None:
            what = f'{self.path} is empty or unreadable'
        elif holder_host != host:
            what = f'train.py (pid {pid}) on host {holder_host!r} holds {self.path}; from {host!r} its process cannot be checked'
        else:
            what = f'train.py (pid {pid}, started {holder.get("started", "?")}) is still training in {folder}'
        raise RunLockedError(f'{what}. One run per folder: wait for it or stop it (kill {pid}), or use another '
                             f'--run_name / --output_dir. If no such run is alive, remove {self.path}.')

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
