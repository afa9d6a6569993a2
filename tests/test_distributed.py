"""Training with several processes (paddle.distributed.launch on CPU, gloo) and mixed precision."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import train
from tests.helpers import CPU, REPO, TINY_MODEL

# paddle.distributed.launch takes the rendezvous ports: these tests run in one pytest-xdist worker, one by one.
pytestmark = pytest.mark.xdist_group('paddle_distributed_launch')
COMMON = [*TINY_MODEL, *CPU, '--log_every', '1', '--run_name', 'run', '--epochs', '2', '--val_batch_size', '8']


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(32, 8, 2)


def launch_two_processes(data_root, output, *extra):
    command = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2', '--log_dir',
               str(output / 'launch_logs'), 'train.py', '--dataset_root', data_root, '--output_dir', str(output),
               *COMMON, *extra]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    logs = ''.join(open(output / 'launch_logs' / name).read() for name in sorted(os.listdir(output / 'launch_logs')))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs[-5000:]
    return open(output / 'run' / 'train.log').read()


def logged_losses(log):
    return np.array([float(v) for v in re.findall(r'Iter \[\d+/\d+\] lr \S+ loss (\S+)', log)])


@pytest.fixture(scope='module')
def two_and_one(data_root, tmp_path_factory):
    """The same global batch of 8: 2 processes x 4, and 1 process x 8."""
    two = tmp_path_factory.mktemp('two')
    one = tmp_path_factory.mktemp('one')
    log_two = launch_two_processes(data_root, two, '--batch_size', '4')
    assert train.main(['--dataset_root', data_root, '--output_dir', str(one), *COMMON, '--batch_size', '8']) == 0
    return two / 'run', log_two, one / 'run', open(one / 'run' / 'train.log').read()


def test_both_ranks_hold_identical_weights(two_and_one):
    _, log_two, _, _ = two_and_one
    assert 'device cpu x 2 process(es)' in log_two
    # parameters stay identical through DataParallel's gradient averaging; BatchNorm statistics are
    # averaged over ranks after every epoch, so the whole state is the same on both ranks
    assert 'Weights and statistics on the 2 ranks differ by at most 0\n' in log_two


def test_two_processes_follow_the_one_process_run(two_and_one):
    """Same data order and global batch; only BatchNorm's batch statistics differ (4 vs 8 images per
    batch; no SyncBatchNorm kernel on CPU). Stated tolerance: every logged loss (the mean over ranks)
    within 20 % of the single-process one and the mean over the run within 5 %."""
    run_two, log_two, run_one, log_one = two_and_one
    two, one = logged_losses(log_two), logged_losses(log_one)
    assert len(two) == len(one) == 8
    assert np.all(np.abs(two - one) / one < 0.20), (two, one)
    assert abs(two.mean() - one.mean()) / one.mean() < 0.05
    # the first loss is computed with identical weights on identical images
    assert abs(two[0] - one[0]) / one[0] < 0.05
    state_two = paddle.load(str(run_two / 'checkpoint.pdparams'))['train_state']
    state_one = paddle.load(str(run_one / 'checkpoint.pdparams'))['train_state']
    assert state_two['global_step'] == state_one['global_step'] == 8
    assert 'Mean' in state_two['history'][-1]


def test_only_rank_zero_writes(two_and_one):
    run_two = two_and_one[0]
    assert sorted(os.listdir(run_two)) == ['best_model', 'checkpoint.pdparams', 'config.json', 'curves.png', 'last_eval',
                                          'train.log']


@pytest.mark.parametrize('level', ['O1', 'O2'])
def test_bf16_code_path_on_cpu(data_root, tmp_path, level):
    """The --amp bf16 path (auto_cast, O2 decorate, float32 checkpoint) end to end. On CPU, Paddle 2.6 and
    3.3 turn auto_cast into a no-op (warning "amp_guard can only be enabled on CUDAPlace"), so the
    arithmetic stays float32 here: this checks the wiring, not bf16 numerics."""
    assert train.main(['--dataset_root', data_root, '--output_dir', str(tmp_path), *COMMON, '--batch_size', '4',
                       '--max_iters', '3', '--amp', 'bf16', '--amp_level', level]) == 0
    checkpoint = paddle.load(str(tmp_path / 'run' / 'checkpoint.pdparams'))
    dtypes = {str(v.dtype) for v in checkpoint['model'].values()}
    assert dtypes == {'paddle.float32'}, dtypes       # saved in float32 even when trained in O2
    assert np.isfinite(logged_losses(open(tmp_path / 'run' / 'train.log').read())).all()


def test_runaway_training_stops_without_saving(data_root, tmp_path):
    with pytest.raises(FloatingPointError, match='3 training steps in a row had a non-finite loss'):
        train.main(['--dataset_root', data_root, '--output_dir', str(tmp_path), *COMMON, '--batch_size', '4',
                    '--lr', '1e12', '--max_nonfinite', '3'])
    log = open(tmp_path / 'run' / 'train.log').read()
    assert re.search(r'Epoch 1 iteration \d+ \(step \d+\): non-finite loss or gradient .* step skipped', log)
    assert not (tmp_path / 'run' / 'checkpoint.pdparams').exists()
    assert not (tmp_path / 'run' / 'best_model').exists()


def test_sigterm_to_the_launcher_saves_one_checkpoint(data_root, tmp_path):
    """paddle.distributed.launch forwards SIGTERM (several times) to every rank: the ranks agree on the
    iteration to stop at, rank 0 saves, and the run can be resumed."""
    command = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2', '--log_dir',
               str(tmp_path / 'launch_logs'), 'train.py', '--dataset_root', data_root, '--output_dir', str(tmp_path),
               *COMMON, '--batch_size', '2', '--epochs', '1000']
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / 'run' / 'train.log'
    deadline = time.time() + 180
    while time.time() < deadline and not (log.exists() and 'Iter [3/8]' in log.read_text()):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    text = log.read_text()
    assert 'Stopped by SIGTERM' in text, text[-2000:]
    state = paddle.load(str(tmp_path / 'run' / 'checkpoint.pdparams'))['train_state']
    assert state['global_step'] >= 3
    # stopped inside an epoch, or exactly at its end (iteration 8 of 8: the resumed run starts the next)
    assert state['iteration'] in (state['global_step'] - 8 * state['epoch'], 8)
