"""MPII evaluation end to end: predictions -> PCKh table, results.json and pred.mat, plus the oracle."""
import json
import os
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from scipy.io import loadmat, savemat

from lib.core.metrics import MPIIGroundTruth, evaluate_pckh
from lib.datasets.heatmaps import generate_target, get_final_preds
from lib.datasets.transforms import affine_transform_points, get_affine_transform

TABLE_COLUMNS = ('Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle', 'Mean', 'Mean@0.1', 'Mean@0.11')


def format_table(metrics: Dict[str, float], name: str) -> str:
    """Markdown table as HRNet's _print_name_value, values in percent with 3 decimals."""
    header = '| Arch | ' + ' | '.join(TABLE_COLUMNS) + ' |'
    rule = '|---' * (len(TABLE_COLUMNS) + 1) + '|'
    row = f'| {name} | ' + ' | '.join(f'{metrics[c]:.3f}' for c in TABLE_COLUMNS) + ' |'
    return '\n'.join([header, rule, row])


def eval_line(metrics: Dict[str, float]) -> str:
    """The one-line summary users parse: `[EVAL] Ankle=.. Elbow=.. ...`, keys sorted."""
    return '[EVAL] ' + ' '.join(f'{key}={metrics[key]}' for key in sorted(metrics))


def save_predictions(preds: np.ndarray, path: str) -> None:
    """HRNet's pred.mat: variable `preds`, [N, 16, 2] in 1-based pixels, annotation-file order."""
    savemat(path, {'preds': preds[:, :, 0:2] + 1.0}, do_compression=True)


def load_predictions(path: str, num_samples: int) -> np.ndarray:
    """Read a pred.mat (1-based, as HRNet writes it) -> [N, 16, 2] 0-based pixels."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'predictions file not found: {path}. Expected a pred.mat written by val.py '
                                'or HRNet (variable `preds`, shape (N, 16, 2), 1-based pixels).')
    mat = loadmat(path)
    if 'preds' not in mat:
        raise ValueError(f'{path} has no variable `preds` (found {sorted(k for k in mat if not k.startswith("__"))}); '
                         'expected HRNet\'s pred.mat layout: preds (N, 16, 2), 1-based pixels.')
    preds = np.asarray(mat['preds'], dtype=np.float64)
    if preds.ndim != 3 or preds.shape[0] != num_samples or preds.shape[1] != 16 or preds.shape[2] < 2:
        raise ValueError(f'{path}: preds has shape {preds.shape}, expected ({num_samples}, 16, 2) '
                         '(one row per valid.json entry, in file order).')
    return preds[:, :, 0:2] - 1.0


def write_results(output_dir: str, metrics: Dict[str, float], preds: np.ndarray, extra: dict) -> None:
    os.makedirs(output_dir, exist_ok=True)
    save_predictions(preds, os.path.join(output_dir, 'pred.mat'))
    with open(os.path.join(output_dir, 'results.json'), 'w') as f:
        json.dump(OrderedDict(metrics=metrics, **extra), f, indent=2)


def oracle_predictions(records: List[dict], input_wh, heatmap_wh, sigma: float, refine: bool = True) -> np.ndarray:
    """Ground truth pushed through the target pipeline: annotation -> crop -> Gaussian target ->
    decode -> original-image pixels. What a perfect network could score at this heatmap resolution.
    Returns [N, K, 2] 0-based pixels."""
    preds = []
    for record in records:
        matrix = get_affine_transform(record['center'], record['scale'], 0, input_wh)
        joints = affine_transform_points(record['joints'], matrix)
        target, _ = generate_target(joints, record['joints_vis'], input_wh, heatmap_wh, sigma)
        decoded, _ = get_final_preds(target[None], record['center'][None], record['scale'][None], refine=refine)
        preds.append(decoded[0])
    return np.stack(preds)


def evaluate_predictions(preds: np.ndarray, gt: MPIIGroundTruth) -> Dict[str, float]:
    return dict(evaluate_pckh(preds, gt))
