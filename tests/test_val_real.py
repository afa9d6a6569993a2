"""val.py on the real MPII validation annotations (2958 people): --oracle and --preds_file."""
import json

import numpy as np
import pytest
from scipy.io import loadmat

import val
from lib.datasets.mpii import load_mpii_annotations
from tests.helpers import require_real_mpii, run_val


@pytest.fixture(scope='module')
def oracle_256(tmp_path_factory):
    out = tmp_path_factory.mktemp('oracle256')
    assert val.main(['--oracle', '--image_size', '256', '--dataset_root', require_real_mpii(),
                     '--output_dir', str(out)]) == 0
    return out


def test_oracle_writes_hrnet_pred_mat_and_results(oracle_256):
    preds = loadmat(str(oracle_256 / 'pred.mat'))['preds']
    assert preds.shape == (2958, 16, 2)
    gt = loadmat(str(require_real_mpii() + '/annot/gt_valid.mat'))['pos_gt_src']   # [16, 2, N], 1-based
    visible = gt.transpose(2, 0, 1) > 0                                              # [N, 16, 2]
    # A Gaussian drawn at the rounded joint and decoded again is off by at most half a heatmap pixel
    # per axis, i.e. 0.5 x (200 * scale / 64) image pixels; only joints outside the crop do worse.
    scales = np.array([r['scale'][0] for r in load_mpii_annotations(require_real_mpii(), 'valid')])
    bound = 0.5 * 200 * scales / 64 + 1e-3
    within = np.abs(preds - gt.transpose(2, 0, 1)) <= bound[:, None, None]
    assert within[visible].mean() > 0.995
    results = json.load(open(oracle_256 / 'results.json'))
    assert results['oracle'] == {'image_size': '256x256', 'sigma': 2.0}
    assert list(results['metrics']) == ['Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle', 'Mean',
                                        'Mean@0.1', 'Mean@0.11']


def test_oracle_is_near_perfect_and_finer_heatmaps_cost_less(oracle_256, tmp_path):
    m256 = json.load(open(oracle_256 / 'results.json'))['metrics']
    assert val.main(['--oracle', '--image_size', '384', '--dataset_root', require_real_mpii(),
                     '--output_dir', str(tmp_path)]) == 0
    m384 = json.load(open(tmp_path / 'results.json'))['metrics']
    assert 99.5 < m256['Mean'] < 100 and 99.5 < m384['Mean'] < 100   # joints outside the crop are lost
    # the quantisation of 64x64 heatmaps shows at the 0.10 threshold; 96x96 heatmaps lose less
    assert m256['Mean@0.1'] < m384['Mean@0.1'] and m256['Mean@0.1'] < m256['Mean@0.11']


def test_preds_file_reproduces_the_oracle_table_and_eval_line(oracle_256, tmp_path, capsys):
    lines = run_val(capsys, '--preds_file', str(oracle_256 / 'pred.mat'), '--dataset_root', require_real_mpii(),
                    '--output_dir', str(tmp_path))
    expected = json.load(open(oracle_256 / 'results.json'))['metrics']
    assert json.load(open(tmp_path / 'results.json'))['metrics'] == pytest.approx(expected, abs=1e-9)
    assert lines[-1].startswith('[EVAL] Ankle=') and 'Mean@0.1=' in lines[-1] and 'Mean@0.11=' in lines[-1]
    assert lines[0].startswith('| Arch | Head | Shoulder |')


def test_ground_truth_as_pred_mat_gives_100(tmp_path, capsys):
    from scipy.io import savemat
    gt = loadmat(require_real_mpii() + '/annot/gt_valid.mat')['pos_gt_src']
    savemat(str(tmp_path / 'gt_pred.mat'), {'preds': gt.transpose(2, 0, 1)})     # already 1-based
    lines = run_val(capsys, '--preds_file', str(tmp_path / 'gt_pred.mat'), '--dataset_root', require_real_mpii(),
                    '--output_dir', str(tmp_path / 'out'))
    metrics = json.load(open(tmp_path / 'out' / 'results.json'))['metrics']
    assert all(value == 100.0 for value in metrics.values())
    assert 'Mean=100.0 ' in lines[-1]


def test_preds_file_of_the_wrong_shape_is_refused(tmp_path):
    from scipy.io import savemat
    savemat(str(tmp_path / 'short.mat'), {'preds': np.zeros((10, 16, 2))})
    with pytest.raises(ValueError, match=r'preds has shape \(10, 16, 2\), expected \(2958, 16, 2\)'):
        val.main(['--preds_file', str(tmp_path / 'short.mat'), '--dataset_root', require_real_mpii(),
                  '--output_dir', str(tmp_path)])
