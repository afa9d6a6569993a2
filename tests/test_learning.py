"""Proof that training learns: a small hourglass trained on CPU for a few minutes on the synthetic
MPII data must beat, by a wide margin, the best guess that ignores the image (the mean training
pose placed in every validation crop). Takes about 3 minutes on a 2-core machine."""
import json
import os

import numpy as np
import pytest

import train
from lib.core.mpii_eval import evaluate_pckh, load_mpii_ground_truth
from lib.datasets.mpii import load_mpii_annotations
from lib.datasets.synthetic import make_synthetic_mpii
from lib.datasets.transforms import affine_transform_points, get_affine_transform

INPUT_WH = (64, 64)
# The README's quick start, for 10 epochs instead of 15.
QUICK_START = ['--image_size', '64', '--num_stacks', '1', '--num_features', '64', '--sigma', '1',
               '--optimizer', 'adam', '--lr', '2e-3', '--scale_factor', '0.15', '--rotation_factor', '15',
               '--batch_size', '16', '--workers', '1', '--log_every', '20', '--device', 'cpu']


def mean_pose_baseline(root: str) -> float:
    """PCKh Mean of predicting, for every validation person, the average training pose in crop
    coordinates: what a network that ignores the pixels could at best learn."""
    def crop_joints(record):
        return affine_transform_points(record['joints'], get_affine_transform(record['center'], record['scale'], 0, INPUT_WH))
    train_records = load_mpii_annotations(root, 'train')
    joints = np.stack([crop_joints(r) for r in train_records])              # [N, K, 2]
    visible = np.stack([r['joints_vis'] for r in train_records]) > 0        # [N, K]
    mean_pose = np.stack([joints[visible[:, k], k].mean(axis=0) for k in range(joints.shape[1])])
    preds = np.stack([affine_transform_points(mean_pose, get_affine_transform(r['center'], r['scale'], 0, INPUT_WH, inv=True))
                      for r in load_mpii_annotations(root, 'valid')])
    return evaluate_pckh(preds, load_mpii_ground_truth(os.path.join(root, 'annot', 'gt_valid.mat')))['Mean']


@pytest.mark.slow
def test_small_hourglass_learns_synthetic_mpii(tmp_path):
    root = str(tmp_path / 'data')
    make_synthetic_mpii(root, num_train=1000, num_valid=200, seed=0)
    baseline = mean_pose_baseline(root)
    assert train.main(['--dataset_root', root, '--output_dir', str(tmp_path), '--run_name', 'learn',
                       '--epochs', '10', '--eval_every', '5', *QUICK_START]) == 0
    history = json.load(open(tmp_path / 'learn' / 'last_eval' / 'results.json'))['metrics']
    print(f'mean-pose baseline Mean {baseline:.2f}; trained Mean {history["Mean"]:.2f}')
    assert 10 < baseline < 30           # the prior alone already places hips and shoulders
    assert history['Mean'] > max(35.0, baseline + 15)
