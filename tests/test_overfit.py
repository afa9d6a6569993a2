"""tools/preflight.py --overfit: the K people of the real photos are learned; a set whose joint order disagrees
with the flip pairs, a set whose joints are all invisible and a run whose lr is ~0 fail, each naming its cause."""
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


@pytest.mark.slow
def test_a_joint_order_that_disagrees_with_the_flip_pairs_fails(tmp_path, capsys):
    def swap(entry):
        entry['joints'] = [entry['joints'][RIGHT_ARM_LEG.get(k, k)] for k in range(16)]
        entry['joints_vis'] = [entry['joints_vis'][RIGHT_ARM_LEG.get(k, k)] for k in range(16)]
    root = copy_set(require_real_mpii(), tmp_path, 'swapped', swap)
    code = run(root, 'swapped', tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    # No gt_swapped.mat: the score is the heatmap accuracy (measured 59.9 here, 84.0 on the real order; bar 67).
    assert 'overfit: training heatmap accuracy of the K people' in failed(tmp_path), err
    assert 'the network cannot fit these people: check the joint order of your annotation' in err


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
    _, eval_set, _ = overfit_people(config, 8)
    paddle.seed(0)
    finding = check_batchnorm_modes(*_train_and_eval_mode(build_model_from(config.model),
                                                          _batches(eval_set, 8)[0]['image']))
    assert finding.result == 'FAIL' and 'BatchNorm running statistics' in finding.fix, finding
