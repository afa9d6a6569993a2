"""One clean message for a user's mistake.

A bad path, flag, annotation, image, weights or detection file is the user's to fix, so the entry scripts
end with the message alone, what was received, what was expected and how to fix it, and a non-zero exit,
instead of a traceback through code the user did not write. Errors of that kind are raised as the classes
below (each also a ValueError, FileNotFoundError, ... so callers may catch them as before). Any other
exception is a bug and keeps its traceback. `--debug` or POSE_DEBUG=1 shows the traceback of every error.

An error raised inside a DataLoader worker reaches the main process as Paddle re-raises it: the same
class, built from a text that holds the worker's whole traceback, and on a reader thread whose failure
the main thread sees only as "Blocking queue is killed". `clean_message` recovers the original message,
and `run_cli` reports a user error of a loader thread in place of the main thread's consequence.
"""
import errno
import logging
import os
import sys
import threading
from typing import Callable, List, Optional, Sequence

DEBUG_ENV = 'POSE_DEBUG'
DEBUG_FLAG = '--debug'
EXIT_USER_ERROR = 2          # as argparse exits on a bad flag
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Marks an error the user fixes by changing an input; its message says what and how."""


class BadValue(UserError, ValueError):
    """An input's content or a flag's value is wrong."""


class BadType(UserError, TypeError):
    """A value has the wrong type (a config key, a JSON field)."""


class MissingFile(UserError, FileNotFoundError):
    """A path the user gave (or a file such a path must hold) does not exist."""


class MissingPackage(UserError, ImportError):
    """An optional package a feature needs is not installed."""


class AlreadyExists(UserError, FileExistsError):
    """An output the user named exists and would be overwritten."""


class UnreadableFile(UserError, OSError):
    """A file exists but cannot be read or decoded (a broken image, a truncated JPEG)."""


class NotWritable(UserError, OSError):
    """An output path cannot be written (read-only, no permission, disk full)."""


class Unavailable(UserError, RuntimeError):
    """What the user asked for does not exist here (a GPU on a CPU-only build)."""


class NonFinite(UserError, FloatingPointError):
    """Weights, statistics or predictions hold inf or NaN."""


# Operating-system errors that are the environment's, not a bug: reported as one line naming the path.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC: 'free space there, or choose another output folder',
                       errno.EDQUOT: 'free space there, or choose another output folder',
                       errno.EROFS: 'the file system is read-only; choose a writable output folder',
                       errno.EACCES: 'check its permissions, or choose another path',
                       errno.EPERM: 'check its permissions, or choose another path',
                       errno.ENOENT: 'check the path',
                       errno.ENOTDIR: 'a part of the path is a file, not a folder; check the path',
                       errno.EISDIR: 'a file was expected, not a folder; check the path'}


def clean_message(error: BaseException) -> str:
    """The message of a user error, without the worker traceback Paddle's DataLoader wraps around it."""
    text = str(error)
    if text.startswith('DataLoader worker') or 'Traceback (most recent call last)' in text:
        name = type(error).__name__
        marker = text.rfind(f'{name}: ')
        if marker >= 0:
            text = text[marker + len(name) + 2:]
    return text.strip()


def environment_error_message(error: BaseException) -> Optional[str]:
    """One line for an OSError the environment caused (disk full, read-only, a missing path), naming the
    path; None for any other error."""
    if not isinstance(error, OSError) or error.errno not in _ENVIRONMENT_ERRNOS:
        return None
    path = error.filename if error.filename is not None else 'a file'
    return f'cannot access {path}: {error.strerror or os.strerror(error.errno)}; {_ENVIRONMENT_ERRNOS[error.errno]}.'


def user_message(error: BaseException) -> Optional[str]:
    """The one-line report of `error` when it is the user's or the environment's to fix, else None."""
    if isinstance(error, UserError):
        return clean_message(error)
    return environment_error_message(error)


class _ThreadErrors:
    """Collects the exceptions of background threads (the DataLoader's reader), so that the user error
    behind "Blocking queue is killed" can be reported, and keeps user errors off stderr."""

    def __init__(self):
        self.errors: List[BaseException] = []
        self._previous = None

    def install(self):
        self._previous = threading.excepthook
        threading.excepthook = self._hook

    def uninstall(self):
        if self._previous is not None:
            threading.excepthook = self._previous

    def _hook(self, args):
        self.errors.append(args.exc_value)
        if user_message(args.exc_value) is None:
            self._previous(args)

    def first_user_error(self) -> Optional[BaseException]:
        return next((e for e in self.errors if user_message(e) is not None), None)


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def add_debug_argument(parser) -> None:
    parser.add_argument(DEBUG_FLAG, action='store_true',
                        help=f'show the traceback of an error (also: {DEBUG_ENV}=1 in the environment)')


def report(message: str) -> None:
    """Print `message` as the run's last line: to stderr, and into the log file of the 'pose' logger when a
    run has one (train.log), so that a nohup log and train.log both end with it."""
    print(f'error: {message}', file=sys.stderr, flush=True)
    for handler in logging.getLogger('pose').handlers:
        if isinstance(handler, logging.FileHandler):
            try:
                handler.emit(logging.LogRecord('pose', logging.ERROR, '', 0, f'error: {message}', None, None))
                handler.flush()
            except Exception:     # the log file may be what failed (disk full)
                pass


def _exit_code(returned) -> int:
    return returned if isinstance(returned, int) else 0     # some mains return their result (model_info)


def run_cli(main: Callable[[Optional[List[str]]], Optional[int]], argv: Optional[List[str]] = None) -> int:
    """Run an entry script's main(argv) and return its exit code: a user's or the environment's error
    ends with one message and EXIT_USER_ERROR, Ctrl-C with EXIT_INTERRUPTED; other exceptions propagate
    with their traceback. With --debug or POSE_DEBUG=1 every exception propagates."""
    args = sys.argv[1:] if argv is None else list(argv)
    if debug_requested(args):
        return _exit_code(main(argv))
    thread_errors = _ThreadErrors()
    thread_errors.install()
    try:
        return _exit_code(main(argv))
    except KeyboardInterrupt:
        print('Interrupted.', file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as error:
        cause = error if user_message(error) is not None else thread_errors.first_user_error()
        if cause is None:
            raise
        report(user_message(cause))
        return EXIT_USER_ERROR
    finally:
        thread_errors.uninstall()

