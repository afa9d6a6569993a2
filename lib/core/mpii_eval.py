"""MPII evaluation as HRNet's MPIIDataset.evaluate (SPEC B.2): PCKh, the results table, pred.mat and
results.json, and the evaluator train.py and val.py use (as coco_eval.py for COCO).

`Mean` is PCKh@0.5, `Mean@0.1` is PCKh at the true threshold 0.10 (comparable with MMPose's tables)
and `Mean@0.11` is HRNet's legacy "Mean@0.1", which reads row 11 of the threshold curve (= 0.11).
"""
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
from scipy.io import loadmat, savemat

from lib.datasets.skeletons import MPII
from lib.utils.logger import format_table
from lib.core.metrics import require_finite_predictions
from lib.utils.errors import BadValue, MissingFile, NonFinite

SC_BIAS = 0.6          # head size = 0.6 x head-box diagonal
PCKH_THRESHOLD = 0.5
MASKED_JOINTS = slice(6, 8)  # pelvis and thorax are left out of Mean, by position as in HRNet
GT_MAT_VARIABLES = ('dataset_joints', 'jnt_missing', 'pos_gt_src', 'headboxes_src')


@dataclass(frozen=True)
class MPIIGroundTruth:
    """The arrays of gt_valid.mat, N = number of people in valid.json order."""
    joint_index: Dict[str, int]  # short name -> column, looked up from dataset_joints
    jnt_missing: np.ndarray      # [16, N], 1 = missing
    pos_gt_src: np.ndarray       # [16, 2, N], 1-based pixels
    headboxes_src: np.ndarray    # [2, 2, N], (top-left, bottom-right) x (x, y)

    @property
    def num_samples(self) -> int:
        return self.pos_gt_src.shape[2]


def read_mat(path: str, what: str, expected: str) -> dict:
    """The variables of a MATLAB file; a missing or unreadable file is one error naming it and `expected`."""
    if not os.path.isfile(path):
        raise MissingFile(f'{what} not found: {path}. Expected {expected}.')
    try:
        return loadmat(path)
    except Exception as error:      # scipy raises several types for a file that is not a .mat
        raise BadValue(f'cannot read {path} as a MATLAB file ({error}); expected {expected}.') from None


def load_mpii_ground_truth(path: str) -> MPIIGroundTruth:
    """Read gt_valid.mat (HRNet's MPII evaluation file), or the gt_<set>.mat of another set, and check its
    variables."""
    mat = read_mat(path, 'MPII ground truth', 'the gt_valid.mat from the HRNet annotation package (see README, '
                   '"Preparing MPII"), or for another set <name> a gt_<name>.mat with the same variables, one '
                   'column per person of annot/<name>.json')
    missing = [name for name in GT_MAT_VARIABLES if name not in mat]
    if missing:
        raise BadValue(f'{path} lacks the variables {missing}; expected {list(GT_MAT_VARIABLES)} '
                       '(the gt_valid.mat shipped with the HRNet MPII annotations).')
    names = mat['dataset_joints']
    joint_index = {str(np.squeeze(names[0, j])): j for j in range(names.shape[1])}
    gt = MPIIGroundTruth(joint_index, mat['jnt_missing'], mat['pos_gt_src'].astype(np.float64),
                         mat['headboxes_src'].astype(np.float64))
    n = gt.num_samples
    expected = {'jnt_missing': (16, n), 'pos_gt_src': (16, 2, n), 'headboxes_src': (2, 2, n)}
    for name, shape in expected.items():
        if getattr(gt, name).shape != shape:
            raise BadValue(f'{path}: {name} has shape {getattr(gt, name).shape}, expected {shape}.')
    return gt


def pckh_curve(preds: np.ndarray, gt: MPIIGroundTruth, thresholds: np.ndarray,
               strict: bool = False) -> np.ndarray:
    """PCKh in percent per threshold and joint: [T, 16]. preds [N, 16, >=2] are 0-based pixels.

    `strict` uses < instead of HRNet's <= (MMPose 1.x).
    """
    require_finite_predictions(preds[..., 0:2])
    if preds.shape[0] != gt.num_samples or preds.shape[1] != 16:
        raise BadValue(f'predictions have shape {preds.shape}, but the ground truth has {gt.num_samples} '
                       'people x 16 joints; predictions must follow valid.json order, one row per entry.')
    pos_pred = np.transpose(preds[:, :, 0:2] + 1.0, (1, 2, 0))      # [16, 2, N], 1-based as the .mat
    visible = 1 - gt.jnt_missing                                   # [16, N]
    uv_err = np.linalg.norm(pos_pred - gt.pos_gt_src, axis=1)      # [16, N]
    head_size = SC_BIAS * np.linalg.norm(gt.headboxes_src[1] - gt.headboxes_src[0], axis=0)  # [N]
    scaled_err = uv_err / head_size * visible
    joint_count = np.sum(visible, axis=1)                          # [16]
    compare = np.less if strict else np.less_equal
    hits = compare(scaled_err[None], thresholds[:, None, None]) * visible[None]   # [T, 16, N]
    with np.errstate(invalid='ignore', divide='ignore'):
        return 100.0 * np.sum(hits, axis=2) / joint_count


def evaluate_pckh(preds: np.ndarray, gt: MPIIGroundTruth, strict: bool = False) -> 'OrderedDict[str, float]':
    """Per-part PCKh@0.5, Mean, Mean@0.1 (true 0.10) and Mean@0.11 (HRNet's row 11), in percent."""
    rng = np.arange(0, 0.5 + 0.01, 0.01)                           # 51 thresholds, as HRNet
    curve = pckh_curve(preds, gt, np.concatenate([[PCKH_THRESHOLD], rng]), strict)
    pckh, pck_all = curve[0], curve[1:]
    visible = 1 - gt.jnt_missing
    joint_count = np.ma.array(np.sum(visible, axis=1), mask=False)
    joint_count.mask[MASKED_JOINTS] = True
    joint_ratio = joint_count / np.sum(joint_count).astype(np.float64)
    pckh_masked = np.ma.array(pckh, mask=joint_count.mask)

    j = gt.joint_index
    pair = lambda left, right: float(0.5 * (pckh[j[left]] + pckh[j[right]]))  # noqa: E731
    return OrderedDict([
        ('Head', float(pckh[j['head']])),
        ('Shoulder', pair('lsho', 'rsho')),
        ('Elbow', pair('lelb', 'relb')),
        ('Wrist', pair('lwri', 'rwri')),
        ('Hip', pair('lhip', 'rhip')),
        ('Knee', pair('lkne', 'rkne')),
        ('Ankle', pair('lank', 'rank')),
        ('Mean', float(np.sum(pckh_masked * joint_ratio))),
        ('Mean@0.1', float(np.sum(np.ma.array(pck_all[10], mask=joint_count.mask) * joint_ratio))),
        ('Mean@0.11', float(np.sum(np.ma.array(pck_all[11], mask=joint_count.mask) * joint_ratio))),
    ])


# ------------------------------------------------------------------------------------ table and files

TABLE_COLUMNS = ('Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle', 'Mean', 'Mean@0.1', 'Mean@0.11')


def mpii_table(metrics: Dict[str, float], name: str) -> str:
    """Markdown table as HRNet's _print_name_value, values in percent with 3 decimals."""
    return format_table(metrics, name, TABLE_COLUMNS)


def mpii_eval_line(metrics: Dict[str, float]) -> str:
    """The one-line summary users parse: `[EVAL] Ankle=.. Elbow=.. ...`, keys sorted."""
    return '[EVAL] ' + ' '.join(f'{key}={metrics[key]}' for key in sorted(metrics))


def save_predictions(preds: np.ndarray, path: str) -> None:
    """HRNet's pred.mat: variable `preds`, [N, 16, 2] in 1-based pixels, annotation-file order."""
    savemat(path, {'preds': preds[:, :, 0:2] + 1.0}, do_compression=True)


def load_predictions(path: str, num_samples: int) -> np.ndarray:
    """Read a pred.mat (1-based, as HRNet writes it) -> [N, 16, 2] 0-based pixels."""
    mat = read_mat(path, 'predictions file', 'a pred.mat written by val.py or HRNet (variable `preds`, shape '
                   '(N, 16, 2), 1-based pixels)')
    if 'preds' not in mat:
        raise BadValue(f'{path} has no variable `preds` (found {sorted(k for k in mat if not k.startswith("__"))}); '
                       'expected HRNet\'s pred.mat layout: preds (N, 16, 2), 1-based pixels.')
    preds = np.asarray(mat['preds'], dtype=np.float64)
    if preds.ndim != 3 or preds.shape[0] != num_samples or preds.shape[1] != 16 or preds.shape[2] < 2:
        raise BadValue(f'{path}: preds has shape {preds.shape}, expected ({num_samples}, 16, 2) '
                       '(one row per valid.json entry, in file order).')
    if not np.all(np.isfinite(preds[:, :, 0:2])):
        raise NonFinite(f'{path}: preds holds NaN or inf ({int(np.sum(~np.isfinite(preds[:, :, 0:2])))} values); '
                        'every joint needs a finite prediction, as val.py and HRNet write them.')
    return preds[:, :, 0:2] - 1.0


def write_results(output_dir: str, metrics: Dict[str, float], preds: np.ndarray, extra: dict) -> None:
    os.makedirs(output_dir, exist_ok=True)
    save_predictions(preds, os.path.join(output_dir, 'pred.mat'))
    with open(os.path.join(output_dir, 'results.json'), 'w') as f:
        json.dump(OrderedDict(metrics=metrics, **extra), f, indent=2)


# ------------------------------------------------------------------------------------------ evaluator

class MPIIEvaluator:
    """PCKh against annot/gt_<set>.mat; predictions must be in the annotation file's order."""
    indicator = 'Mean'
    metric_name = 'PCKh'

    def __init__(self, dataset_root: str, image_set: str):
        self.gt = load_mpii_ground_truth(os.path.join(dataset_root, 'annot', f'gt_{image_set}.mat'))
        self.layout = MPII
        self.files = ('results.json', 'pred.mat')

    def evaluate(self, preds: np.ndarray, maxvals: Optional[np.ndarray], output_dir: str,
                 extra: dict) -> Dict[str, float]:
        """preds [N, 16, 2] 0-based pixels (maxvals unused) -> PCKh table; writes results.json and pred.mat."""
        metrics = dict(evaluate_pckh(preds, self.gt))
        write_results(output_dir, metrics, preds, extra)
        return metrics

    def evaluate_file(self, path: str, output_dir: str, extra: dict) -> Dict[str, float]:
        """A saved pred.mat (HRNet's layout) instead of a model's predictions."""
        return self.evaluate(load_predictions(path, self.gt.num_samples), None, output_dir, extra)

    table = staticmethod(mpii_table)
    eval_line = staticmethod(mpii_eval_line)
