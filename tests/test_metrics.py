"""PCKh (SPEC B.2-B.4) and the training heatmap accuracy (SPEC D.4): known answers, errors, real data."""
import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.io import savemat

from lib.core.metrics import heatmap_accuracy
from lib.core.mpii_eval import (MPIIGroundTruth, evaluate_pckh, load_mpii_ground_truth,
                                pckh_curve)
from lib.datasets.skeletons import MPII
from tests.helpers import MPII_REAL

JOINT_INDEX = {name: j for j, name in enumerate(MPII.short_names)}
RNG_51 = np.arange(0, 0.5 + 0.01, 0.01)   # HRNet's threshold curve

# SPEC B.4: error in px along x, per sample and joint.
B4_ERRORS = np.array([
    [2, 5, 20, 1, 14, 16, 0, 0, 4, 9, 3.2, 6, 2.5, 2.9, 40, 10],
    [100, 3, 11, 2, 13, 50, 1, 30, 2, 12.5, 2.5, 24, 1, 2, 6, 11.9],
])


def _b4_arrays():
    j = np.arange(16)
    pos_gt_src = np.zeros((16, 2, 2))
    pos_gt_src[:, :, 0] = np.stack([100 + 10 * j, 200 + 5 * j], axis=1)
    pos_gt_src[:, :, 1] = np.stack([300 + 10 * j, 50 + 5 * j], axis=1)
    jnt_missing = np.zeros((16, 2), dtype=np.uint8)
    jnt_missing[[0, 5], 1] = 1
    headboxes_src = np.zeros((2, 2, 2))
    headboxes_src[:, :, 0] = [[0, 0], [30, 40]]     # diagonal 50 -> head size 30
    headboxes_src[:, :, 1] = [[10, 10], [34, 42]]   # diagonal 40 -> head size 24
    return jnt_missing, pos_gt_src, headboxes_src


def _b4_ground_truth():
    jnt_missing, pos_gt_src, headboxes_src = _b4_arrays()
    return MPIIGroundTruth(JOINT_INDEX, jnt_missing, pos_gt_src, headboxes_src)


def _b4_preds(gt):
    preds = np.transpose(gt.pos_gt_src, (2, 0, 1)) - 1.0    # [N, 16, 2], 0-based
    preds[:, :, 0] += B4_ERRORS
    return preds


def test_b4_intermediate_results():
    gt = _b4_ground_truth()
    head_size = 0.6 * np.linalg.norm(gt.headboxes_src[1] - gt.headboxes_src[0], axis=0)
    assert_allclose(head_size, [30, 24])
    assert_array_equal(np.sum(1 - gt.jnt_missing, axis=1), [1, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])

    curve = pckh_curve(_b4_preds(gt), gt, RNG_51)
    assert curve.shape == (51, 16)
    assert_allclose(curve[50], [100, 100, 50, 100, 50, 0, 100, 50, 100, 50, 100, 50, 100, 100, 50, 100])
    row10 = np.array([100, 0, 0, 100, 0, 0, 100, 50, 50, 0, 0, 0, 100, 100, 0, 0], dtype=float)
    assert_allclose(curve[10], row10)
    row11 = row10.copy()
    row11[10] = 100     # rwri: normalised errors 0.1067 and 0.1042
    assert_allclose(curve[11], row11)


def test_b4_reported_values():
    gt = _b4_ground_truth()
    result = evaluate_pckh(_b4_preds(gt), gt)
    assert list(result) == ['Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle',
                            'Mean', 'Mean@0.1', 'Mean@0.11']
    expected = {'Head': 50.0, 'Shoulder': 100.0, 'Elbow': 50.0, 'Wrist': 100.0, 'Hip': 75.0, 'Knee': 75.0,
                'Ankle': 50.0, 'Mean': 2000 / 26, 'Mean@0.1': 800 / 26, 'Mean@0.11': 1000 / 26}
    for name, value in expected.items():
        assert_allclose(result[name], value, rtol=0, atol=1e-9, err_msg=name)


def test_b4_strict_comparison_changes_nothing_here():
    # SPEC B.4: no error sits exactly on a threshold, so < gives the same numbers as <=.
    gt = _b4_ground_truth()
    assert evaluate_pckh(_b4_preds(gt), gt, strict=True) == evaluate_pckh(_b4_preds(gt), gt)


def test_error_of_exactly_half_a_head_size_passes_only_with_less_equal():
    jnt_missing, pos_gt_src, headboxes_src = _b4_arrays()
    gt = MPIIGroundTruth(JOINT_INDEX, np.zeros((16, 1), np.uint8), pos_gt_src[:, :, :1], headboxes_src[:, :, :1])
    preds = np.transpose(gt.pos_gt_src, (2, 0, 1)) - 1.0
    preds[0, JOINT_INDEX['head'], 0] += 15.0        # 15 / (0.6 * 50) = 0.5 exactly
    assert evaluate_pckh(preds, gt)['Head'] == 100.0
    assert evaluate_pckh(preds, gt, strict=True)['Head'] == 0.0
    assert evaluate_pckh(preds, gt, strict=True)['Shoulder'] == 100.0


@pytest.mark.parametrize('shape', [(3, 16, 2), (1, 16, 2), (2, 14, 2)])
def test_predictions_of_the_wrong_shape_are_rejected(shape):
    gt = _b4_ground_truth()
    with pytest.raises(ValueError) as info:
        evaluate_pckh(np.zeros(shape), gt)
    assert str(shape) in str(info.value)
    assert '2 people x 16 joints' in str(info.value)


def test_missing_ground_truth_file_names_the_path(tmp_path):
    path = tmp_path / 'annot' / 'gt_valid.mat'
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_mpii_ground_truth(str(path))


def _write_mat(path, drop=None):
    jnt_missing, pos_gt_src, headboxes_src = _b4_arrays()
    names = np.empty((1, 16), dtype=object)
    names[0, :] = list(MPII.short_names)
    variables = {'dataset_joints': names, 'jnt_missing': jnt_missing, 'pos_gt_src': pos_gt_src,
                 'headboxes_src': headboxes_src}
    variables.pop(drop, None)
    savemat(str(path), variables)


def test_ground_truth_mat_round_trip_gives_the_b4_answer(tmp_path):
    path = tmp_path / 'gt_valid.mat'
    _write_mat(path)
    gt = load_mpii_ground_truth(str(path))
    assert gt.num_samples == 2
    assert gt.joint_index == JOINT_INDEX
    assert_allclose(evaluate_pckh(_b4_preds(gt), gt)['Mean'], 2000 / 26, atol=1e-9)


@pytest.mark.parametrize('drop', ['headboxes_src', 'jnt_missing'])
def test_ground_truth_mat_without_a_variable_names_it(tmp_path, drop):
    path = tmp_path / 'gt_valid.mat'
    _write_mat(path, drop=drop)
    with pytest.raises(ValueError) as info:
        load_mpii_ground_truth(str(path))
    message = str(info.value)
    assert str(path) in message
    # The message may also list every expected variable; the missing one must be named beyond that.
    assert message.count(drop) > message.count('pos_gt_src')


def _maps_with_peaks(peaks, size=64):
    """[1, K, size, size] maps with a single 1 at each (x, y)."""
    maps = np.zeros((1, len(peaks), size, size), dtype=np.float32)
    for k, (x, y) in enumerate(peaks):
        maps[0, k, y, x] = 1.0
    return maps


def test_heatmap_accuracy_identical_maps():
    target = _maps_with_peaks([(10, 10), (30, 40), (50, 20)])
    assert heatmap_accuracy(target, target) == 1.0


def test_heatmap_accuracy_shift_beyond_half_the_normaliser_fails_that_joint():
    # Normaliser 64/10 = 6.4, threshold 0.5 -> 3.2 px: a 3 px shift counts, a 4 px shift does not.
    target = _maps_with_peaks([(10, 10), (30, 40), (50, 20), (20, 50)])
    output = _maps_with_peaks([(14, 10), (30, 43), (50, 20), (20, 50)])
    assert heatmap_accuracy(output, target) == 0.75


def test_heatmap_accuracy_ignores_joints_whose_target_is_at_the_border():
    # Targets: x = 1 (border), y = 1 (border), a valid joint at (20, 20), and an absent joint (all-zero
    # map, decodes to (0, 0)). The prediction is wrong for every joint except the valid one.
    target = _maps_with_peaks([(1, 30), (30, 1), (20, 20), (40, 40)])
    target[0, 3] = 0
    output = _maps_with_peaks([(60, 60), (60, 60), (20, 20), (60, 60)])
    assert heatmap_accuracy(output, target) == 1.0
    assert heatmap_accuracy(_maps_with_peaks([(60, 60)] * 4), target) == 0.0


def test_heatmap_accuracy_counts_targets_just_inside_the_border():
    target = _maps_with_peaks([(2, 2), (20, 20)])
    output = _maps_with_peaks([(60, 60), (20, 20)])
    assert heatmap_accuracy(output, target) == 0.5


# ---------------------------------------------------------------------------- real data (optional)

GT_VALID = Path(MPII_REAL) / 'annot' / 'gt_valid.mat'
needs_gt_valid = pytest.mark.skipif(
    not GT_VALID.is_file(), reason=f'{GT_VALID} not found; set POSE_SHARED_DATA to the shared data root')


@pytest.fixture(scope='module')
def real_gt():
    return load_mpii_ground_truth(str(GT_VALID))


@needs_gt_valid
def test_real_ground_truth_layout(real_gt):
    assert real_gt.num_samples == 2958
    expected = {'rank': 0, 'rkne': 1, 'rhip': 2, 'lhip': 3, 'lkne': 4, 'lank': 5, 'neck': 8, 'head': 9,
                'rwri': 10, 'relb': 11, 'rsho': 12, 'lsho': 13, 'lelb': 14, 'lwri': 15}
    assert {name: real_gt.joint_index[name] for name in expected} == expected


@needs_gt_valid
def test_real_ground_truth_as_prediction_scores_100(real_gt):
    preds = np.transpose(real_gt.pos_gt_src, (2, 0, 1)) - 1.0
    result = evaluate_pckh(preds, real_gt)
    assert result['Mean'] == 100.0
    assert result['Mean@0.1'] == 100.0
    assert result['Mean@0.11'] == 100.0
    assert all(value == 100.0 for value in result.values())


@needs_gt_valid
def test_real_ground_truth_with_one_pixel_error(real_gt):
    # The smallest head size in gt_valid.mat is 14.5 px, so 1 px is < 0.07 head sizes: the @0.5 and @0.1
    # numbers stay at 100, but the low end of the curve moves.
    preds = np.transpose(real_gt.pos_gt_src, (2, 0, 1)) - 1.0
    preds[:, :, 0] += 1.0
    curve = pckh_curve(preds, real_gt, np.array([0.0, 0.05]))
    assert_array_equal(curve[0], np.zeros(16))
    assert np.all(curve[1] < 100.0) and np.all(curve[1] > 95.0)
    assert evaluate_pckh(preds, real_gt)['Mean'] > 95.0
