"""Training curves: loss, learning rate and the validation score per epoch, side by side, written as
curves.png in the run folder after every epoch. Drawn by matplotlib, an optional package
(requirements-extras.txt): without it a run writes no curves.png, and RunMonitor says so once in the log."""
import importlib.util
import math
from typing import List, Optional, Sequence

MISSING = 'matplotlib is not installed (pip install matplotlib, or pip install -r requirements-extras.txt)'


def curves_unavailable() -> Optional[str]:
    """Why curves.png cannot be drawn here, or None."""
    return None if importlib.util.find_spec('matplotlib') else MISSING


def _points(epochs: Sequence[float], values: Sequence[Optional[float]], positive: bool):
    return [(e, v) for e, v in zip(epochs, values)
            if v is not None and math.isfinite(v) and (v > 0 or not positive)]


def _decades(values: Sequence[float]):
    """(low, high) whole powers of ten around the values, at least one decade apart, so that a log axis shows
    labelled ticks at 10^k (a constant lr gets 1e-3 and 1e-2, not two labels a hair apart)."""
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return 10.0 ** low, 10.0 ** max(high, low + 1)


def _panel(axes, title: str, points, color: str, log_scale: bool) -> None:
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter
    axes.set_title(title, fontsize=10)
    axes.set_xlabel('epoch')
    axes.grid(True, which='major', alpha=0.3)
    if not points:
        axes.text(0.5, 0.5, 'none yet', ha='center', va='center', transform=axes.transAxes, color='grey')
        axes.set_xticks([])
        axes.set_yticks([])
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    axes.plot(xs, ys, marker='o', markersize=3, color=color)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log_scale:
        axes.set_yscale('log')
        axes.set_ylim(*_decades(ys))
        axes.yaxis.set_major_locator(LogLocator(base=10))
        axes.yaxis.set_minor_locator(LogLocator(base=10, subs=range(2, 10)))
        axes.yaxis.set_minor_formatter(NullFormatter())


def draw_curves(history: List[dict], path: str, indicator: str = 'Mean') -> None:
    """history: the run's rows ({'epoch', 'loss', 'lr', and the validation metrics when validated});
    `indicator` is the validation metric to plot (Mean = PCKh@0.5 for MPII, AP for COCO). Needs matplotlib
    (curves_unavailable)."""
    from matplotlib.figure import Figure     # no pyplot: no global state, no GUI backend
    epochs = [row['epoch'] for row in history]
    figure = Figure(figsize=(12, 3.4), dpi=100, layout='constrained')
    loss, lr, score = figure.subplots(1, 3)
    _panel(loss, 'training loss', _points(epochs, [row.get('loss') for row in history], True), 'tab:blue', True)
    _panel(lr, 'learning rate', _points(epochs, [row.get('lr') for row in history], True), 'tab:green', True)
    _panel(score, f'validation {indicator}', _points(epochs, [row.get(indicator) for row in history], False),
           'tab:red', False)
    figure.savefig(path)
