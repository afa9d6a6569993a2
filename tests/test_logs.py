"""Logs that speak (issue 13): the first and the last iteration of a run, a line every --log_every iterations or
--log_seconds seconds, validation progress in non-terminal logs, a stop signal logged at once and obeyed after the
current iteration or validation batch, "best: none yet" on resume."""
import os
import re
import signal
import subprocess

import paddle
import pytest

import train
import val
from lib.core.engine import TrainState, describe_best
from lib.vis.monitor import RunMonitor
from lib.utils.signals import GracefulStop
from tests.helpers import REPO, run_train


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(16, 8, 1)      # 4 iterations per epoch at batch 4, one validation batch of 8


def iteration_lines(log: str):
    return re.findall(r'Epoch \[(\d+)/\d+\] Iter \[(\d+)/4\]', log)


@pytest.fixture(scope='module')
def short_run(data_root, tmp_path_factory):
    """--max_iters ends the run mid-epoch, at iteration 3 of 4; --log_every would log none of them."""
    output = tmp_path_factory.mktemp('short')
    assert run_train(data_root, output, '--epochs', '1', '--max_iters', '3', '--log_every', '100') == 0
    run = os.path.join(str(output), 'run')
    return run, open(os.path.join(run, 'train.log')).read()


def test_first_and_last_iteration_are_logged_when_max_iters_ends_the_run_mid_epoch(short_run):
    _, log = short_run
    assert iteration_lines(log) == [('1', '1'), ('1', '3')]


def test_validation_logs_progress_with_speed_and_eta_when_not_on_a_terminal(short_run):
    _, log = short_run      # pytest captures stdout: not a terminal
    assert re.search(r'validate \[1/1\] [\d.]+ samples/s ETA 0:00:00', log), log


def test_log_seconds_logs_a_line_before_log_every_is_reached(data_root, tmp_path):
    assert run_train(data_root, tmp_path, '--epochs', '1', '--log_every', '100', '--log_seconds', '0') == 0
    log = open(os.path.join(tmp_path, 'run', 'train.log')).read()
    assert iteration_lines(log) == [('1', '1'), ('1', '2'), ('1', '3'), ('1', '4')]


def test_a_signal_is_logged_at_once_and_stops_after_the_current_iteration_and_resume_says_no_best_yet(
        data_root, tmp_path, monkeypatch):
    real_build = train.build_training

    def build_training(*args, **kwargs):
        model, training, state = real_build(*args, **kwargs)
        criterion, calls = training.criterion, []

        def signalling_criterion(*inputs):
            calls.append(1)
            if len(calls) == 2:     # during the forward pass of iteration 2
                os.kill(os.getpid(), signal.SIGTERM)
            return criterion(*inputs)
        training.criterion = signalling_criterion
        return model, training, state
    monkeypatch.setattr(train, 'build_training', build_training)
    assert run_train(data_root, tmp_path, '--epochs', '1', '--log_every', '100') == 143
    run = os.path.join(str(tmp_path), 'run')
    log = open(os.path.join(run, 'train.log')).read()
    state = paddle.load(os.path.join(run, 'checkpoint.pdparams'))['train_state']
    assert (state['iteration'], state['global_step']) == (2, 2)     # not 3: the step under way was the last
    received = log.index('Received SIGTERM: stopping after the current iteration (epoch 1, iteration 2)')
    assert received < log.index('Epoch [1/1] Iter [2/4]')           # logged when received, before the step ended
    assert iteration_lines(log) == [('1', '1'), ('1', '2')]         # the last iteration of the run is logged

    monkeypatch.setattr(train, 'build_training', real_build)
    assert train.main(['--resume', run]) == 0
    log = open(os.path.join(run, 'train.log')).read()
    assert 'Resumed at epoch 1, iteration 2 (step 2, best: none yet)' in log
    assert 'best Mean -1.000' not in log


def test_a_signal_during_validation_ends_it_and_the_run_and_resume_validates_first(data_root, tmp_path, monkeypatch):
    def signalling_batch(self, batch, heatmaps, epoch):      # the first of the 2 validation batches
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(RunMonitor, 'on_validation_batch', signalling_batch)
    assert run_train(data_root, tmp_path, '--epochs', '2', '--log_every', '100', '--val_batch_size', '4') == 143
    run = os.path.join(str(tmp_path), 'run')
    log = open(os.path.join(run, 'train.log')).read()
    state = paddle.load(os.path.join(run, 'checkpoint.pdparams'))['train_state']
    assert (state['epoch'], state['iteration'], state['global_step']) == (1, 0, 4)   # no step of epoch 2
    assert state['pending_validation'] == 1 and state['best_epoch'] == -1
    assert 'Mean' not in state['history'][0]
    assert not os.path.exists(os.path.join(run, 'best_model', 'model.pdparams'))    # no decision on half the data
    assert iteration_lines(log) == [('1', '1'), ('1', '4')]
    assert 'Received SIGTERM: stopping the validation of epoch 1 after its current batch' in log
    assert 'The validation of epoch 1 was interrupted by SIGTERM' in log
    assert 'Validation (PCKh' not in log
    assert 'Stopped by SIGTERM after epoch 1. Resume with: python train.py --resume' in log

    monkeypatch.undo()
    assert train.main(['--resume', run]) == 0
    log = open(os.path.join(run, 'train.log')).read()
    assert log.index('Running the validation of epoch 1 that a stop interrupted') < log.index('Epoch [2/2] Iter [1/4]')
    state = paddle.load(os.path.join(run, 'checkpoint.pdparams'))['train_state']
    assert state['pending_validation'] == 0 and state['global_step'] == 8
    assert [row['epoch'] for row in state['history']] == [1, 2]
    assert all('Mean' in row for row in state['history'])
    assert os.path.exists(os.path.join(run, 'best_model', 'model.pdparams'))


def test_describe_best():
    assert describe_best('Mean', TrainState()) == 'best: none yet'
    assert describe_best('AP', TrainState(best_mean=0.5, best_epoch=3)) == 'best AP 0.500 at epoch 3'


def test_graceful_stop_reports_the_first_signal_once():
    seen = []
    with GracefulStop(seen.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop()
    assert seen == ['SIGTERM']


def test_graceful_stop_reports_nothing_from_a_forked_worker():
    seen = []
    with GracefulStop(seen.append):
        pid = os.fork()
        if pid == 0:        # a DataLoader worker inherits the handler
            os.kill(os.getpid(), signal.SIGINT)
            os._exit(len(seen))
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and seen == []


def test_val_logs_progress_to_stderr(short_run, data_root, tmp_path, capsys):
    run, _ = short_run
    assert val.main(['--pretrained_model', os.path.join(run, 'best_model', 'model.pdparams'), '--dataset_root',
                     data_root, '--output_dir', str(tmp_path), '--workers', '0', '--device', 'cpu']) == 0
    captured = capsys.readouterr()
    assert re.search(r'predict \[1/1\] [\d.]+ samples/s ETA', captured.err), captured.err
    assert captured.out.strip().splitlines()[-1].startswith('[EVAL] ')     # stdout: the results only


def test_logs_are_ignored_by_git():
    if subprocess.run(['git', '-C', REPO, 'rev-parse'], capture_output=True).returncode:
        pytest.skip('not a git checkout')
    assert subprocess.run(['git', '-C', REPO, 'check-ignore', '-q', 'hg256.log']).returncode == 0
