"""Logging made for `nohup ... > run.log &` and `tail -f`: plain timestamped lines, flushed at once,
written both to stdout and to <run dir>/train.log. A tqdm bar is shown only on a terminal."""
import logging
import sys
from typing import Dict, Optional, Sequence

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


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def setup_logger(log_file: str = None, name: str = 'pose', quiet: bool = False) -> logging.Logger:
    """`quiet` (ranks other than 0 in distributed training) shows warnings and errors only."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _TqdmSafeHandler(sys.stdout) if stdout_is_terminal() else logging.StreamHandler(sys.stdout)
    handlers = [console]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode='a'))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
    return logger


def progress(iterable, total: Optional[int], desc: str):
    """A tqdm bar on a terminal for more than one item; the bare iterable under nohup, where bars only
    clutter the log."""
    if stdout_is_terminal() and (total is None or total > 1):
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
    return iterable


def format_table(metrics: Dict[str, float], name: str, columns: Sequence[str]) -> str:
    """One-row Markdown table of `columns` as HRNet's _print_name_value, 3 decimals: the README's format."""
    header = '| Arch | ' + ' | '.join(columns) + ' |'
    rule = '|---' * (len(columns) + 1) + '|'
    row = f'| {name} | ' + ' | '.join(f'{metrics[c]:.3f}' for c in columns) + ' |'
    return '\n'.join([header, rule, row])
