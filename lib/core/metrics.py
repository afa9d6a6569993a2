"""MPII PCKh (HRNet's MPIIDataset.evaluate, SPEC B.2) and the training-time heatmap accuracy (SPEC D.4).

`Mean` is PCKh@0.5, `Mean@0.1` is PCKh at the true threshold 0.10 (comparable with MMPose's tables)
and `Mean@0.11` is HRNet's legacy "Mean@0.1", which reads row 11 of the threshold curve (= 0.11).
"""
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict

import numpy as np
from scipy.io import loadmat

from lib.datasets.heatmaps import get_max_preds

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


def load_mpii_ground_truth(path: str) -> MPIIGroundTruth:
    """Read gt_valid.mat (HRNet's MPII evaluation file) and check its variables."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'MPII ground truth not found: {path}. Expected <dataset_root>/annot/gt_valid.mat from the '
            'HRNet annotation package (see README, "Preparing MPII").')
    mat = loadmat(path)
    missing = [name for name in GT_MAT_VARIABLES if name not in mat]
    if missing:
        raise ValueError(f'{path} lacks the variables {missing}; expected {list(GT_MAT_VARIABLES)} '
                         '(the gt_valid.mat shipped with the HRNet MPII annotations).')
    names = mat['dataset_joints']
    joint_index = {str(np.squeeze(names[0, j])): j for j in range(names.shape[1])}
    gt = MPIIGroundTruth(joint_index, mat['jnt_missing'], mat['pos_gt_src'].astype(np.float64),
                         mat['headboxes_src'].astype(np.float64))
    n = gt.num_samples
    expected = {'jnt_missing': (16, n), 'pos_gt_src': (16, 2, n), 'headboxes_src': (2, 2, n)}
    for name, shape in expected.items():
        if getattr(gt, name).shape != shape:
            raise ValueError(f'{path}: {name} has shape {getattr(gt, name).shape}, expected {shape}.')
    return gt


def pckh_curve(preds: np.ndarray, gt: MPIIGroundTruth, thresholds: np.ndarray,
               strict: bool = False) -> np.ndarray:
    """PCKh in percent per threshold and joint: [T, 16]. preds [N, 16, >=2] are 0-based pixels.

    `strict` uses < instead of HRNet's <= (MMPose 1.x).
    """
    if preds.shape[0] != gt.num_samples or preds.shape[1] != 16:
        raise ValueError(f'predictions have shape {preds.shape}, but the ground truth has {gt.num_samples} '
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


def heatmap_accuracy(output: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """HRNet's training accuracy (SPEC D.4), logging only: share of joints whose argmax lies within
    threshold x (h/10, w/10) of the target's argmax. Joints whose target peak is at x <= 1 or y <= 1
    (including absent ones) are ignored; returns 0 when none count."""
    _, _, h, w = output.shape
    pred, _ = get_max_preds(output)
    gt, _ = get_max_preds(target)
    norm = np.array([h, w], dtype=np.float32) / 10
    valid = (gt[:, :, 0] > 1) & (gt[:, :, 1] > 1)                              # [N, K]
    dist = np.linalg.norm((pred - gt) / norm, axis=2)                          # [N, K]
    per_joint = [np.mean(dist[valid[:, k], k] < threshold) for k in range(output.shape[1]) if valid[:, k].any()]
    return float(np.mean(per_joint)) if per_joint else 0.0
