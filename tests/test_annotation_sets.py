"""Any MPII annotation set by name (annot/<name>.json with annot/gt_<name>.mat), as HRNet's TRAIN_SET / TEST_SET:
the real-photo subset valid_photos against the full validation set it was cut from, and the errors."""
import json
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.io import loadmat, savemat

import val
from lib.core.mpii_eval import MPIIGroundTruth, evaluate_pckh, load_mpii_ground_truth
from lib.datasets.mpii import check_dataset_root, load_mpii_annotations
from lib.utils.errors import BadValue, MissingFile
from tests.helpers import require_real_mpii, run_val

PHOTOS = 'valid_photos'


def photo_indices(root: str) -> np.ndarray:
    """The 269 indices of valid_photos.json's people in the 2958-person valid.json (PROVENANCE.md)."""
    with open(os.path.join(root, 'annot', 'valid_photos_index.txt')) as f:
        return np.array([int(line) for line in f if line.strip()])


def sliced_ground_truth(gt: MPIIGroundTruth, indices: np.ndarray) -> MPIIGroundTruth:
    return MPIIGroundTruth(gt.joint_index, gt.jnt_missing[:, indices], gt.pos_gt_src[:, :, indices],
                           gt.headboxes_src[:, :, indices])


def noisy_predictions(root: str, seed: int = 0) -> np.ndarray:
    """[2958, 16, 2] 0-based predictions: the ground truth moved by about a head-size fraction, so that PCKh is
    neither 0 nor 100 and differs per joint."""
    gt = loadmat(os.path.join(root, 'annot', 'gt_valid.mat'))['pos_gt_src'].transpose(2, 0, 1) - 1.0
    return gt + np.random.RandomState(seed).normal(0, 25, gt.shape)


def test_the_photo_subset_is_the_full_set_cut_at_its_indices():
    root = require_real_mpii()
    indices = photo_indices(root)
    full, photos = load_mpii_annotations(root, 'valid'), load_mpii_annotations(root, PHOTOS)
    assert len(photos) == len(indices) == 269
    for record, index in zip(photos, indices):
        for key in ('image', 'center', 'scale', 'joints', 'joints_vis'):
            assert_array_equal(record[key], full[index][key])
    subset = load_mpii_ground_truth(os.path.join(root, 'annot', f'gt_{PHOTOS}.mat'))
    cut = sliced_ground_truth(load_mpii_ground_truth(os.path.join(root, 'annot', 'gt_valid.mat')), indices)
    for name in ('jnt_missing', 'pos_gt_src', 'headboxes_src'):
        assert_array_equal(getattr(subset, name), getattr(cut, name))


def test_pckh_of_a_subset_is_the_full_set_evaluator_on_the_same_people(tmp_path, capsys):
    """val.py --valid_set valid_photos on 269 predictions = evaluate_pckh of the 2958-person ground truth
    restricted to those people; and it differs from the full set's figure (the subset is really used)."""
    root = require_real_mpii()
    indices = photo_indices(root)
    preds = noisy_predictions(root)
    full_gt = load_mpii_ground_truth(os.path.join(root, 'annot', 'gt_valid.mat'))
    expected = evaluate_pckh(preds[indices], sliced_ground_truth(full_gt, indices))
    pred_mat = tmp_path / 'pred.mat'
    savemat(str(pred_mat), {'preds': preds[indices] + 1.0})      # HRNet's pred.mat is 1-based
    run_val(capsys, '--valid_set', PHOTOS, '--dataset_root', root, '--preds_file', str(pred_mat),
            '--output_dir', str(tmp_path / 'out'))
    metrics = json.load(open(tmp_path / 'out' / 'results.json'))['metrics']
    for name, value in expected.items():
        assert_allclose(metrics[name], value, atol=1e-9, err_msg=name)
    assert abs(metrics['Mean'] - evaluate_pckh(preds, full_gt)['Mean']) > 0.01
    assert 10 < metrics['Mean'] < 95


def test_a_ground_truth_of_another_size_than_its_json_is_one_clear_error(tmp_path):
    root = require_real_mpii()
    fake = tmp_path / 'mpii'
    (fake / 'annot').mkdir(parents=True)
    os.symlink(os.path.join(root, 'images'), fake / 'images')
    os.symlink(os.path.join(root, 'annot', f'{PHOTOS}.json'), fake / 'annot' / 'mixed.json')
    os.symlink(os.path.join(root, 'annot', 'gt_valid.mat'), fake / 'annot' / 'gt_mixed.mat')
    with pytest.raises(BadValue) as error:
        val.main(['--oracle', '--valid_set', 'mixed', '--dataset_root', str(fake), '--output_dir',
                  str(tmp_path / 'out')])
    message = str(error.value)
    assert 'gt_mixed.mat holds 2958 people' in message and 'mixed.json 269' in message
    assert 'gt_valid.mat at the subset' in message


def test_an_absent_set_names_the_sets_that_are_there(tmp_path):
    root = require_real_mpii()
    with pytest.raises(MissingFile) as error:
        check_dataset_root(root, 'valid_fotos')
    message = str(error.value)
    assert 'valid_fotos.json does not exist' in message
    assert 'Sets found there: valid, valid_photos' in message


@pytest.mark.parametrize('name', ['../valid', 'annot/valid', 'valid.json/', ''])
def test_a_path_instead_of_a_set_name_is_refused(name, tmp_path):
    with pytest.raises(BadValue, match='is not a set name'):
        check_dataset_root(str(tmp_path), name)
