"""Logging made for `nohup ... > run.log &` and `tail -f`: plain timestamped lines, flushed at once,
written both to stdout and to <run dir>/train.log. A tqdm bar is shown only on a terminal; elsewhere long
loops log progress lines instead."""
import logging
import sys
import time
from typing import Callable, Dict, Iterator, Optional, Sequence

from tqdm import tqdm

FORMAT = '%(asctime)s %(message)s'
DATE_FORMAT = '%Y-%m-%d %H:%M:%S'


class _TqdmSafeHandler(logging.StreamHandler):
    """Writes through tqdm so that log lines do not break a progress bar on a terminal."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # logging must never take the run down
            self.handleError(record)


class _LogFileHandler(logging.FileHandler):
    """train.log: when a line cannot be written (disk full), says so once on stderr instead of printing
    logging's traceback for every line; the console keeps logging."""

    failed = False

    def handleError(self, record):
        if not self.failed:
            self.failed = True
            error = sys.exc_info()[1]
            print(f'warning: cannot write {self.baseFilename} ({getattr(error, "strerror", None) or error}); '
                  'log lines go to the console only from now on.', file=sys.stderr, flush=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def setup_logger(log_file: str = None, name: str = 'pose', quiet: bool = False, stream=None) -> logging.Logger:
    """`quiet` (ranks other than 0 in distributed training) shows warnings and errors only. `stream`: the
    console, default stdout (val.py logs to stderr, so that its stdout holds the results only)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    stream = stream or sys.stdout
    console = _TqdmSafeHandler(stream) if stdout_is_terminal() else logging.StreamHandler(stream)
    handlers = [console]
    if log_file:
        handlers.append(_LogFileHandler(log_file, mode='a'))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
    return logger


def progress(iterable, total: Optional[int], desc: str, logger: Optional[logging.Logger] = None,
             log_seconds: float = 60.0, count: Optional[Callable[[object], int]] = None):
    """A tqdm bar on a terminal for more than one item. Elsewhere (nohup, a log file) the bare iterable or,
    given a logger, the items with a line at the first, every `log_seconds` and at the last: items done,
    samples/s (`count(item)` samples per item, default 1) and the ETA."""
    if stdout_is_terminal() and (total is None or total > 1):
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
    if logger is None:
        return iterable
    return _logged(iterable, total, desc, logger, log_seconds, count)


def _logged(iterable, total, desc, logger, log_seconds, count) -> Iterator:
    start = last = time.time()
    samples = 0
    for done, item in enumerate(iterable, 1):
        yield item
        samples += count(item) if count is not None else 1
        now = time.time()
        if done == 1 or done == total or now - last >= log_seconds:
            elapsed = max(now - start, 1e-9)
            eta = f' ETA {format_eta(elapsed / done * (total - done))}' if total else ''
            logger.info('%s [%d/%s] %.1f samples/s%s', desc, done, total or '?', samples / elapsed, eta)
            last = now


def format_eta(seconds: float) -> str:
    """H:MM:SS, with days in front past 24 hours."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f'{hours}:{rest // 60:02d}:{rest % 60:02d}'
    return f'{days}d {text}' if days else text


def format_table(metrics: Dict[str, float], name: str, columns: Sequence[str]) -> str:
    """One-row Markdown table of `columns` as HRNet's _print_name_value, 3 decimals: the README's format."""
    header = '| Arch | ' + ' | '.join(columns) + ' |'
    rule = '|---' * (len(columns) + 1) + '|'
    row = f'| {name} | ' + ' | '.join(f'{metrics[c]:.3f}' for c in columns) + ' |'
    return '\n'.join([header, rule, row])
