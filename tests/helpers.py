"""Shared test helpers: where the shared real data lives, and tiny runs on generated data."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get('POSE_SHARED_DATA', os.path.join(REPO, '..', 'shared', 'data'))
MPII_REAL = os.path.join(SHARED_DATA, 'mpii')
COCO_MINI = os.path.join(SHARED_DATA, 'coco', 'coco_mini')          # 68 val2017 people, with images
MMPOSE_COCO = os.path.join(SHARED_DATA, 'coco', 'mmpose_tests')     # MMPose's COCO test annotations
MINI_VAL_JSON = os.path.join(COCO_MINI, 'annotations', 'person_keypoints_val2017.json')


def require_real_mpii() -> str:
    """Path of the real MPII validation annotations, or skip saying where they were looked for."""
    if not os.path.isfile(os.path.join(MPII_REAL, 'annot', 'gt_valid.mat')):
        pytest.skip(f'real MPII annotations not found under {MPII_REAL}; set POSE_SHARED_DATA to the shared data folder')
    return MPII_REAL


CPU = ['--workers', '0', '--device', 'cpu']   # entry-script flags of every CPU test run
# A hourglass small enough for CPU tests: 1 stack, 16 features, 64 px input (16 px heatmaps).
TINY_TRAIN_ARGS = ['--image_size', '64', '--num_stacks', '1', '--num_features', '16', '--batch_size', '4',
                   '--workers', '0', '--log_every', '1', '--val_batch_size', '8', '--device', 'cpu']


def require(path: str) -> str:
    """`path` inside the shared data, or skip saying where it was looked for."""
    if not os.path.exists(path):
        pytest.skip(f'shared data not found: {path}; set POSE_SHARED_DATA to the shared data folder')
    return path


def randomize_torch_batchnorm(net) -> None:
    """Set every BatchNorm2d of a PyTorch module to random affine parameters and running statistics away
    from 1/0, so that a BatchNorm mapping error in a converter shows in the outputs. Call under no_grad."""
    import torch.nn as tnn
    for m in net.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(1234)
