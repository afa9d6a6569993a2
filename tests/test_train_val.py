"""End to end on generated data: train.py (smoke, resume, SIGTERM, refusal to overwrite) and val.py
(model, --preds_file, bad weights), with a tiny hourglass on CPU."""
import json
import shutil
import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import train
import val
from tests.helpers import REPO, TINY_TRAIN_ARGS, run_train


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(16, 8, 1)


def weights_of(path):
    return {k: np.asarray(v) for k, v in paddle.load(path)['model'].items()}


@pytest.fixture(scope='module')
def smoke_run(data_root, tmp_path_factory):
    output = tmp_path_factory.mktemp('smoke')
    assert run_train(data_root, output, '--epochs', '2') == 0
    return os.path.join(str(output), 'run')


def test_smoke_run_writes_checkpoint_best_model_config_and_log(smoke_run):
    for name in ('checkpoint.pdparams', 'best_model/model.pdparams', 'config.json', 'train.log',
                 'last_eval/results.json', 'last_eval/pred.mat'):
        assert os.path.isfile(os.path.join(smoke_run, name)), name
    log = open(os.path.join(smoke_run, 'train.log')).read()
    assert 'Epoch [1/2] Iter [1/4] lr 2.500e-04 loss ' in log
    for field in ('samples/s', 'data ', 'ETA ', 'acc '):
        assert field in log
    assert '| Arch | Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | Mean | Mean@0.1 | Mean@0.11 |' in log
    state = paddle.load(os.path.join(smoke_run, 'checkpoint.pdparams'))['train_state']
    assert (state['epoch'], state['iteration'], state['global_step']) == (2, 0, 8)
    assert len(state['history']) == 2 and 'Mean' in state['history'][1]


def test_val_on_the_trained_model_matches_the_last_validation(smoke_run, data_root, tmp_path, capsys):
    # The last epoch's validation is the best one only by chance; compare val.py with the weights it
    # evaluated, i.e. the checkpoint (val.py accepts a checkpoint as well as a plain state dict).
    expected = json.load(open(os.path.join(smoke_run, 'last_eval', 'results.json')))['metrics']
    assert val.main(['--pretrained_model', os.path.join(smoke_run, 'checkpoint.pdparams'),
                     '--dataset_root', data_root, '--output_dir', str(tmp_path), '--workers', '0',
                     '--device', 'cpu']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith('[EVAL] Ankle=')
    got = json.load(open(tmp_path / 'results.json'))['metrics']
    assert got == pytest.approx(expected, abs=1e-9)
    parsed = dict(item.split('=') for item in out[-1][len('[EVAL] '):].split())
    assert float(parsed['Mean']) == pytest.approx(expected['Mean'])


def test_val_preds_file_gives_the_same_table(smoke_run, data_root, tmp_path):
    source = os.path.join(smoke_run, 'last_eval')
    assert val.main(['--preds_file', os.path.join(source, 'pred.mat'), '--dataset_root', data_root,
                     '--output_dir', str(tmp_path)]) == 0
    expected = json.load(open(os.path.join(source, 'results.json')))['metrics']
    assert json.load(open(tmp_path / 'results.json'))['metrics'] == pytest.approx(expected, abs=1e-9)


def test_val_rejects_weights_of_another_architecture(smoke_run, data_root, tmp_path):
    with pytest.raises(ValueError, match=r'do not fit the model[\s\S]*missing keys: hourglasses\.1'):
        val.main(['--pretrained_model', os.path.join(smoke_run, 'best_model', 'model.pdparams'),
                  '--num_stacks', '2', '--dataset_root', data_root, '--output_dir', str(tmp_path),
                  '--workers', '0', '--device', 'cpu'])
    with pytest.raises(ValueError, match=r'shape mismatches: stem\.1\.conv1\.weight: file \(4, 64, 1, 1\) vs model \(8, 64, 1, 1\)'):
        val.main(['--pretrained_model', os.path.join(smoke_run, 'best_model', 'model.pdparams'),
                  '--num_features', '32', '--dataset_root', data_root, '--output_dir', str(tmp_path),
                  '--workers', '0', '--device', 'cpu'])


def test_val_names_a_missing_weights_file(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='weights file not found: .*nothing.pdparams'):
        val.main(['--pretrained_model', str(tmp_path / 'nothing.pdparams'), '--dataset_root', data_root,
                  '--workers', '0', '--device', 'cpu'])


def test_refuses_to_start_over_an_existing_run(smoke_run, data_root):
    with pytest.raises(FileExistsError, match='--resume'):
        run_train(data_root, os.path.dirname(smoke_run), '--epochs', '1')


def test_resume_continues_exactly_where_it_stopped(data_root, tmp_path):
    # 6 iterations straight vs 3 + resume to 6: the stop falls mid-epoch (4 iterations per epoch).
    assert run_train(data_root, tmp_path / 'straight', '--epochs', '3', '--max_iters', '6') == 0
    assert run_train(data_root, tmp_path / 'split', '--epochs', '3', '--max_iters', '3') == 0
    checkpoint = tmp_path / 'split' / 'run' / 'checkpoint.pdparams'
    assert paddle.load(str(checkpoint))['train_state']['iteration'] == 3
    assert train.main(['--resume', str(checkpoint), '--max_iters', '6']) == 0

    straight = weights_of(str(tmp_path / 'straight' / 'run' / 'checkpoint.pdparams'))
    resumed = weights_of(str(checkpoint))
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    state = paddle.load(str(checkpoint))['train_state']
    assert (state['epoch'], state['iteration'], state['global_step']) == (1, 2, 6)
    # The loss of the epoch that the resume split is the whole epoch's, not only its resumed part's.
    straight_history = paddle.load(str(tmp_path / 'straight' / 'run' / 'checkpoint.pdparams'))['train_state']['history']

    def first_epoch_loss(history):
        return [row['loss'] for row in history if row['epoch'] == 1 and not row.get('partial')]
    assert first_epoch_loss(state['history']) == pytest.approx(first_epoch_loss(straight_history), rel=1e-6)


def test_a_run_whose_every_step_is_skipped_keeps_no_model_and_ends_with_an_error(data_root, tmp_path, monkeypatch):
    """Every loss NaN: the run has diverged (more than half of the epoch's steps skipped, lib/core/engine.py
    check_divergence); it stops inside the first epoch with an error naming the cause and the fix, before any
    validation, so no best model is claimed and no checkpoint of these weights is written."""
    from lib.core import loss as loss_module
    from lib.utils.errors import NonFinite
    monkeypatch.setattr(loss_module.JointsMSELoss, 'forward',
                        lambda self, pred, target, weight: pred.astype('float32').mean() * float('nan'))
    with pytest.raises(NonFinite, match=r'Training diverged: .* 3 of the 4 steps of epoch 1 .* lower --lr'):
        run_train(data_root, tmp_path, '--epochs', '1', '--max_nonfinite', '100')
    run = tmp_path / 'run'
    assert not (run / 'best_model').exists() and not (run / 'checkpoint.pdparams').exists()
    assert 'Validation' not in (run / 'train.log').read_text()


def test_non_finite_weights_are_never_written(tmp_path):
    from lib.models import build_model
    from lib.utils.checkpoint import save_weights
    model = build_model('hourglass', num_stacks=1, num_features=16)
    path = tmp_path / 'model.pdparams'
    save_weights(model, str(path))
    good = path.read_bytes()
    model.state_dict()['stem.0.bn._variance'].set_value(np.full([64], np.inf, dtype='float32'))
    with pytest.raises(FloatingPointError, match=r'stem\.0\.bn\._variance.*last file written there is intact'):
        save_weights(model, str(path))
    assert path.read_bytes() == good


def test_sigterm_saves_a_resumable_checkpoint(data_root, tmp_path):
    run_dir = tmp_path / 'run'
    command = [sys.executable, '-u', 'train.py', '--dataset_root', data_root, '--output_dir', str(tmp_path),
               '--run_name', 'run', *TINY_TRAIN_ARGS, '--epochs', '1000']
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = run_dir / 'train.log'
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and 'Iter [2/4]' in log.read_text()):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert 'Stopped by SIGTERM' in output and 'python train.py --resume' in output
    assert not (run_dir / '.train.lock').exists()          # released on the way out
    state = paddle.load(str(run_dir / 'checkpoint.pdparams'))['train_state']
    assert state['global_step'] >= 2
    assert train.main(['--resume', str(run_dir), '--max_iters', str(state['global_step'] + 1),
                       '--eval_every', '100']) == 0
    assert paddle.load(str(run_dir / 'checkpoint.pdparams'))['train_state']['global_step'] == state['global_step'] + 1


def test_resume_rejects_a_plain_weights_file(smoke_run):
    with pytest.raises(ValueError, match='not a resumable checkpoint'):
        train.main(['--resume', os.path.join(smoke_run, 'best_model', 'model.pdparams')])


def test_image_size_must_fit_the_model(data_root, tmp_path):
    with pytest.raises(ValueError, match=r'hourglass needs input sides that are multiples of 64; received 100x100 \(from the flags\)'):
        run_train(data_root, tmp_path, '--image_size', '100')
    with pytest.raises(ValueError, match=r'pose_resnet_18 needs input sides that are multiples of 32; received 80x80'):
        train.main(['--model', 'pose_resnet_18', '--dataset_root', data_root, '--output_dir', str(tmp_path),
                    '--image_size', '80'])


def test_options_of_another_model_are_refused(data_root, tmp_path):
    with pytest.raises(ValueError, match="pose_resnet_18 has no option num_stacks .*Remove --num_stacks"):
        train.main(['--model', 'pose_resnet_18', '--dataset_root', data_root, '--output_dir', str(tmp_path),
                    '--image_size', '64', '--num_stacks', '2', '--workers', '0', '--device', 'cpu'])


@pytest.mark.parametrize('model, expected', [
    ('hourglass', {'optimizer': 'rmsprop', 'lr': 2.5e-4, 'batch_size': 16, 'epochs': 140, 'warmup_iters': 0}),
    ('hourglass52', {'optimizer': 'adam', 'lr': 5e-4, 'batch_size': 64, 'epochs': 210, 'warmup_iters': 500,
                     'lr_steps': (170, 200)}),
    ('pose_resnet_50', {'optimizer': 'adam', 'lr': 1e-3, 'batch_size': 32, 'epochs': 140, 'lr_steps': (90, 120)}),
])
def test_each_model_trains_with_its_reference_preset_unless_overridden(model, expected):
    config = train.build_config(train.parse_args(['--model', model]))
    for key, value in expected.items():
        assert getattr(config, key) == value, key
    assert config.data.color_rgb == (not model.startswith('pose_resnet'))   # HRNet feeds BGR to pose_resnet
    overridden = train.build_config(train.parse_args(['--model', model, '--lr', '0.1', '--sigma', '1']))
    assert overridden.lr == 0.1 and overridden.data.sigma == 1 and overridden.optimizer == expected['optimizer']


def test_pose_resnet_and_hourglass52_train_and_validate(data_root, tmp_path):
    for model, size in (('pose_resnet_18', '64'), ('hourglass52', '128')):
        assert train.main(['--model', model, '--dataset_root', data_root, '--output_dir', str(tmp_path),
                           '--image_size', size, '--batch_size', '2', '--max_iters', '2', '--workers', '0',
                           '--device', 'cpu', '--val_batch_size', '8']) == 0
        run = tmp_path / f'mpii_{model}_{size}x{size}'
        assert (run / 'best_model' / 'model.pdparams').is_file()
        assert val.main(['--pretrained_model', str(run / 'best_model' / 'model.pdparams'), '--dataset_root',
                         data_root, '--output_dir', str(tmp_path / model), '--workers', '0', '--device', 'cpu']) == 0
        results = json.load(open(tmp_path / model / 'results.json'))
        assert results['model']['name'] == model and results['data']['input_wh'] == [int(size)] * 2


def test_draw_predictions_tool_draws_model_and_ground_truth(smoke_run, data_root, tmp_path):
    import cv2
    from tools import draw_predictions
    weights = os.path.join(smoke_run, 'best_model', 'model.pdparams')
    draw_predictions.main(['--dataset_root', data_root, '--pretrained_model', weights, '--num', '3',
                           '--columns', '2', '--output', str(tmp_path / 'pred.png')])
    draw_predictions.main(['--dataset_root', data_root, '--num', '3', '--columns', '2', '--output', str(tmp_path / 'gt.png')])
    pred, gt = cv2.imread(str(tmp_path / 'pred.png')), cv2.imread(str(tmp_path / 'gt.png'))
    tile, pad = draw_predictions.TILE, 4
    assert pred.shape == gt.shape == (2 * tile + 3 * pad, 2 * tile + 3 * pad, 3)
    assert not np.array_equal(pred, gt)     # an untrained model does not draw the ground truth


def test_val_takes_input_and_test_conventions_stored_with_the_weights(smoke_run, data_root, tmp_path):
    """A converted princeton-vl model keeps RGB in [0, 1] and no heatmap shift in its config.json."""
    folder = tmp_path / 'converted'
    folder.mkdir()
    shutil.copy(os.path.join(smoke_run, 'best_model', 'model.pdparams'), folder / 'model.pdparams')
    saved = json.load(open(os.path.join(smoke_run, 'config.json')))
    saved['data'].update(mean=[0, 0, 0], std=[1, 1, 1])
    saved['test'] = {'shift_heatmap': False, 'decode_offset': 0.5}
    json.dump(saved, open(folder / 'config.json', 'w'))
    assert val.main(['--pretrained_model', str(folder / 'model.pdparams'), '--dataset_root', data_root,
                     '--output_dir', str(tmp_path / 'out'), '--workers', '0', '--device', 'cpu']) == 0
    results = json.load(open(tmp_path / 'out' / 'results.json'))
    assert results['data']['mean'] == [0, 0, 0] and results['data']['std'] == [1, 1, 1]
    assert results['data']['input_wh'] == [64, 64] and results['model']['num_features'] == 16
    assert results['test']['shift_heatmap'] is False and results['test']['flip_test'] is True
    assert results['test']['decode_offset'] == 0.5


def test_run_pictures_curves_and_debug_images(data_root, tmp_path):
    assert run_train(data_root, tmp_path, '--epochs', '1', '--log_every', '2', '--save_batch_images_gt',
                     '--save_batch_images_pred', '--save_heatmaps_gt', '--save_heatmaps_pred') == 0
    import cv2
    run = tmp_path / 'run'
    curves = cv2.imread(str(run / 'curves.png'))
    assert curves is not None and curves.shape[1] > 3 * curves.shape[0]      # three panels side by side
    names = sorted(os.listdir(run / 'debug'))
    assert 'train_e1_i2_gt.jpg' in names and 'train_e1_i4_hm_pred.jpg' in names
    assert {'val_e1_gt.jpg', 'val_e1_pred.jpg', 'val_e1_hm_gt.jpg', 'val_e1_hm_pred.jpg'} <= set(names)
    heatmaps = cv2.imread(str(run / 'debug' / 'train_e1_i2_hm_gt.jpg'))
    assert heatmaps.shape[1] > heatmaps.shape[0]                             # crop + 16 heatmaps per row


def test_use_vdl_without_visualdl_says_how_to_install(data_root, tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_visualdl(name, *args, **kwargs):
        if name == 'visualdl':
            raise ImportError('No module named visualdl')
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_visualdl)
    with pytest.raises(ImportError, match='pip install visualdl'):
        run_train(data_root, tmp_path, '--epochs', '1', '--use_vdl')


def test_browse_dataset_draws_augmented_samples(data_root, tmp_path):
    import cv2
    from tools import browse_dataset
    browse_dataset.main(['--dataset_root', data_root, '--image_size', '64', '--num', '4', '--output_dir', str(tmp_path)])
    plain = cv2.imread(str(tmp_path / 'samples_gt.jpg'))
    browse_dataset.main(['--dataset_root', data_root, '--image_size', '64', '--num', '4', '--epoch', '1',
                         '--output_dir', str(tmp_path / 'other')])
    assert plain.shape == (64 + 8, 4 * 64 + 5 * 4, 3)
    assert not np.array_equal(plain, cv2.imread(str(tmp_path / 'other' / 'samples_gt.jpg')))  # another draw
    assert cv2.imread(str(tmp_path / 'samples_hm_gt.jpg')) is not None


def test_use_vdl_writes_visualdl_scalars(data_root, tmp_path):
    pytest.importorskip('visualdl', reason='VisualDL is not installed (pip install visualdl)')
    assert run_train(data_root, tmp_path, '--epochs', '1', '--use_vdl') == 0
    files = os.listdir(tmp_path / 'run' / 'vdl')
    assert files and all(os.path.getsize(tmp_path / 'run' / 'vdl' / name) > 0 for name in files)


def test_loader_workers_end_with_each_epoch(data_root, tmp_path):
    """With --workers 1, each epoch's training and validation workers are gone when the run ends (a loop that
    broke out at the epoch's last batch left one set of workers alive per epoch)."""
    import multiprocessing
    before = {p.pid for p in multiprocessing.active_children()}
    assert run_train(data_root, tmp_path, '--epochs', '3', '--workers', '1') == 0
    left = [p for p in multiprocessing.active_children() if p.pid not in before]
    assert not left, f'{len(left)} loader worker processes outlived their epoch'
