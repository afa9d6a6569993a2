"""Training curves drawn with OpenCV (no plotting dependency): loss, learning rate and validation Mean
per epoch, side by side, saved as curves.png in the run folder after every epoch."""
from typing import List, Sequence

import cv2
import numpy as np

PANEL_WH = (360, 240)
MARGIN = 44


def _panel(title: str, epochs: Sequence[float], values: Sequence[float], color, log_scale: bool = False) -> np.ndarray:
    w, h = PANEL_WH
    panel = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(panel, title, (MARGIN, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    points = [(e, v) for e, v in zip(epochs, values) if v is not None and np.isfinite(v) and (v > 0 or not log_scale)]
    cv2.rectangle(panel, (MARGIN, 28), (w - 10, h - 30), (0, 0, 0), 1)
    if not points:
        return panel
    xs = np.array([p[0] for p in points], float)
    ys = np.array([p[1] for p in points], float)
    ys_plot = np.log10(ys) if log_scale else ys
    x_lo, x_hi = xs.min(), max(xs.max(), xs.min() + 1)
    y_lo, y_hi = ys_plot.min(), ys_plot.max()
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    to_px = lambda x, y: (int(MARGIN + (x - x_lo) / (x_hi - x_lo) * (w - 10 - MARGIN)),  # noqa: E731
                          int(h - 30 - (y - y_lo) / (y_hi - y_lo) * (h - 58)))
    pts = np.array([to_px(x, y) for x, y in zip(xs, ys_plot)], np.int32)
    cv2.polylines(panel, [pts], False, color, 2, cv2.LINE_AA)
    for p in pts:
        cv2.circle(panel, tuple(int(c) for c in p), 2, color, -1)
    label = (lambda v: f'{10 ** v:.1e}') if log_scale else (lambda v: f'{v:.3g}')
    for y in (y_lo, y_hi):
        cv2.putText(panel, label(y), (2, to_px(x_lo, y)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (60, 60, 60), 1)
    for x in (x_lo, x_hi):
        cv2.putText(panel, f'{x:g}', (to_px(x, y_lo)[0] - 6, h - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1)
    cv2.putText(panel, 'epoch', (w // 2 - 20, h - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1)
    return panel


def draw_curves(history: List[dict], path: str, indicator: str = 'Mean') -> None:
    """history: the run's rows ({'epoch', 'loss', 'lr', and the validation metrics when validated});
    `indicator` is the validation metric to plot (Mean = PCKh@0.5 for MPII, AP for COCO)."""
    epochs = [row['epoch'] for row in history]
    panels = [_panel('training loss', epochs, [row.get('loss') for row in history], (200, 80, 0), log_scale=True),
              _panel('learning rate', epochs, [row.get('lr') for row in history], (0, 140, 0), log_scale=True),
              _panel(f'validation {indicator}', epochs, [row.get(indicator) for row in history], (0, 0, 200))]
    cv2.imwrite(path, np.hstack(panels))
