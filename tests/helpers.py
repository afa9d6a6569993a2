"""Shared test helpers: where the shared real data lives, the entry-script flag lists of CPU test runs, tiny runs
of train.py and val.py, reading predictions back, and pycocotools' own COCOeval as the reference of our COCO
evaluation. (The PyTorch / MMPose reference models live in their own test modules.)"""
import contextlib
import io
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


def require(path: str) -> str:
    """`path` inside the shared data, or skip saying where it was looked for."""
    if not os.path.exists(path):
        pytest.skip(f'shared data not found: {path}; set POSE_SHARED_DATA to the shared data folder')
    return path


# ------------------------------------------------------------------------------ entry-script flag lists
CPU = ['--workers', '0', '--device', 'cpu']   # entry-script flags of every CPU test run
# A hourglass small enough for CPU tests: 1 stack, 16 features, 64 px input (16 px heatmaps).
TINY_MODEL = ['--image_size', '64', '--num_stacks', '1', '--num_features', '16']
TINY_TRAIN_ARGS = [*TINY_MODEL, '--batch_size', '4', '--log_every', '1', '--val_batch_size', '8', *CPU]


def run_train(data_root: str, output_dir, *extra) -> int:
    """train.py's exit code for the tiny hourglass on `data_root`, run folder <output_dir>/run."""
    import train
    return train.main(['--dataset_root', data_root, '--output_dir', str(output_dir), '--run_name', 'run',
                       *TINY_TRAIN_ARGS, *extra])


def run_val(capsys, *args) -> list:
    """The lines val.py printed (it must succeed)."""
    import val
    assert val.main([str(a) for a in args]) == 0
    return capsys.readouterr().out.strip().splitlines()


def preds_of(output_dir):
    """The predictions [N, K, 2] of the pred.mat val.py wrote to output_dir."""
    import scipy.io as sio
    return sio.loadmat(os.path.join(str(output_dir), 'pred.mat'))['preds']


# ------------------------------------------------------------------------------ references
def pycocotools_stats(gt_json: str, results_json: str, image_ids=None) -> list:
    """COCOeval exactly as HRNet's _do_python_keypoint_eval, called directly (independently of
    lib.core.coco_eval): the 10 stats AP, AP .5, ..., AR (L)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt_json)
        coco_eval = COCOeval(coco, coco.loadRes(results_json), 'keypoints')
        coco_eval.params.useSegm = None
        if image_ids is not None:
            coco_eval.params.imgIds = sorted(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return list(coco_eval.stats[:10])


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
