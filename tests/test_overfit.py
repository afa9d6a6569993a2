"""tools/preflight.py --overfit: the K people of the real photos are learned; a set whose joint order is not the
layout's, a set whose joints are all invisible and a run whose lr is ~0 fail, each naming its cause."""
import json
import os
import sys

import numpy as np
import pytest

from tests.helpers import REPO, require_real_mpii

sys.path.insert(0, os.path.join(REPO, 'tools'))
import preflight  # noqa: E402

# The faster of the two configurations measured in lib/preflight/overfit.py's docstring (and README's).
SMALL = ['--image_size', '64', '--num_stacks', '1', '--num_features', '32', '--lr', '2e-3', '--overfit_iters', '200',
         '--device', 'cpu', '--workers', '0']
# The right arm and the right leg exchanged (ankle <-> wrist, knee <-> elbow, hip <-> shoulder): the left side keeps
# its order, so the flip pairs now map a right wrist onto a left ankle.
RIGHT_ARM_LEG = {0: 10, 1: 11, 2: 12, 10: 0, 11: 1, 12: 2}


def copy_set(root, tmp_path, name: str, change) -> str:
    """A dataset root under tmp_path whose annot/<name>.json is valid_photos.json with change(entry) applied, the
    images linked."""
    os.makedirs(tmp_path / 'annot')
    os.symlink(os.path.join(root, 'images'), tmp_path / 'images')
    with open(os.path.join(root, 'annot', 'valid_photos.json')) as f:
        entries = json.load(f)
    for entry in entries:
        change(entry)
    (tmp_path / 'annot' / f'{name}.json').write_text(json.dumps(entries))
    return str(tmp_path)


def run(root, train_set, tmp_path, *extra):
    return preflight.main(['--overfit', '--overfit_only', '--dataset_root', root, '--train_set', train_set, *SMALL,
                           '--output', str(tmp_path / 'report.json'), *extra])


def failed(tmp_path) -> dict:
    report = json.loads((tmp_path / 'report.json').read_text())
    return {row['check']: row for row in report['findings'] if row['result'] == 'FAIL'}


@pytest.mark.slow
def test_the_real_photos_are_learned(tmp_path, capsys):
    code = run(require_real_mpii(), 'valid_photos', tmp_path, '--overfit', '8')    # measured PCKh 40.4, bar 25
    out = capsys.readouterr()
    assert code == 0, out.out[-3000:] + out.err[-3000:]
    assert '| overfit: training PCKh@0.5 of the K people | pass |' in out.out


def permuted(order):
    def change(entry):
        entry['joints'] = [entry['joints'][k] for k in order]
        entry['joints_vis'] = [entry['joints_vis'][k] for k in order]
    return change


def test_a_wrong_joint_order_fails_before_training_naming_the_pairs(tmp_path, capsys):
    """The right arm and the right leg exchanged: trained, it scored only a little below the real order (heatmap
    accuracy 59.9 vs 84.0, lib/preflight/overfit.py); in the annotations, its shoulders lie below its hips."""
    root = copy_set(require_real_mpii(), tmp_path, 'swapped', permuted([RIGHT_ARM_LEG.get(k, k) for k in range(16)]))
    code = run(root, 'swapped', tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert list(failed(tmp_path)) == ["annotations: joint order is the layout's"]
    assert 'right_shoulder above right_hip for 3% of 267 people' in err
    assert 'check the order in which your annotations list the joints' in err


LEFT_RIGHT = [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]


@pytest.mark.parametrize('name, order, named', [
    ('left and right swapped', LEFT_RIGHT, 'right_shoulder left of left_shoulder in the image for 34%'),
    ('reversed', list(range(15, -1, -1)), 'head_top above upper_neck for 1%'),
    ('random', list(np.random.RandomState(0).permutation(16)), 'above'),
])
def test_the_joint_order_check_sees_swaps_reversals_and_permutations(name, order, named):
    from lib.datasets.mpii import load_mpii_annotations
    from lib.datasets.skeletons import MPII
    from lib.preflight.joint_order import check_joint_order
    records = load_mpii_annotations(require_real_mpii(), 'valid_photos', need_images=False)
    assert check_joint_order(records, MPII, 'valid_photos').result == 'pass'
    wrong = [{**r, 'joints': r['joints'][order], 'joints_vis': r['joints_vis'][order]} for r in records]
    finding = check_joint_order(wrong, MPII, name)
    assert finding.result == 'FAIL' and named in finding.value, finding


def test_all_joints_invisible_fails_before_training(tmp_path, capsys):
    def hide(entry):
        entry['joints_vis'] = [0] * 16
    root = copy_set(require_real_mpii(), tmp_path, 'hidden', hide)
    code = run(root, 'hidden', tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert list(failed(tmp_path)) == ['overfit: target weights not all zero']
    assert 'every joint is marked invisible: check joints_vis' in err


def test_a_loss_that_does_not_fall_is_named(tmp_path, capsys):
    code = run(require_real_mpii(), 'valid_photos', tmp_path, '--overfit', '4', '--overfit_iters', '5',
               '--lr', '1e-12', '--num_features', '16')
    err = capsys.readouterr().err
    assert code == 1
    assert 'overfit: loss falls' in failed(tmp_path)
    assert 'check --lr' in err


def test_bad_overfit_flags_get_one_clear_message(tmp_path):
    from lib.utils.errors import BadValue
    with pytest.raises(BadValue, match='--overfit_iters must be >= 1; received 0'):
        run('/absent', 'valid', tmp_path, '--overfit_iters', '0')


def test_predictions_stuck_at_the_crop_origin_or_the_centre_are_named():
    from lib.preflight.overfit import check_spread
    visible = np.ones((4, 16), dtype=bool)
    empty = np.zeros((4, 16, 16, 16), dtype=np.float32)             # heatmaps <= 0: decoding falls back to (0, 0)
    assert check_spread(empty, visible).result == 'FAIL'
    assert 'the crop origin (0, 0)' in check_spread(empty, visible).fix
    centre = empty.copy()
    centre[:, :, 8, 8] = 1.0
    finding = check_spread(centre, visible)
    assert finding.result == 'FAIL' and 'the centre' in finding.fix and 'ignores its input' in finding.fix
    rng = np.random.RandomState(0)
    assert check_spread(rng.rand(4, 16, 16, 16).astype(np.float32), visible).result == 'pass'


def test_batchnorm_statistics_never_updated_fail_the_eval_mode_check():
    """A fresh network (running mean 0, variance 1: statistics that never saw a batch) on real crops: 1.41 here."""
    import paddle
    from lib.config import resolve_config
    from lib.models import build_model_from
    from lib.preflight.overfit import _batches, _train_and_eval_mode, check_batchnorm_modes, overfit_people
    config = resolve_config({}, sets=[f'data.dataset_root={require_real_mpii()}', 'data.train_set=valid_photos',
                                      'data.input_wh=[64,64]', 'data.heatmap_wh=[16,16]', 'model.num_stacks=1',
                                      'model.num_features=16'])
    _, eval_set, _, _ = overfit_people(config, 8)
    paddle.seed(0)
    finding = check_batchnorm_modes(*_train_and_eval_mode(build_model_from(config.model),
                                                          _batches(eval_set, 8)[0]['image']))
    assert finding.result == 'FAIL' and 'BatchNorm running statistics' in finding.fix, finding
