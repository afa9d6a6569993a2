"""One run per folder (lib/utils/run_lock.py), leftovers of a run killed while saving, and durable saves."""
import json
import os
import socket
import subprocess
import sys

import pytest

import train
from lib.utils import checkpoint
from lib.utils.checkpoint import atomic_save, remove_stale_temporaries
from lib.utils.run_lock import LOCK_NAME, RunLock, RunLockedError
from tests.helpers import TINY_TRAIN_ARGS


@pytest.fixture
def live_process():
    """A sleeping child process: a live pid other than ours."""
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    yield child.pid
    child.kill()
    child.wait()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({'pid': pid, 'host': host or socket.gethostname(),
                                                'started': '2026-01-01 00:00:00'}))


def test_the_lock_is_exclusive_and_released(tmp_path):
    with RunLock(str(tmp_path / 'run')) as lock:
        holder = json.loads(open(lock.path).read())
        assert holder['pid'] == os.getpid() and holder['host'] == socket.gethostname()
        with pytest.raises(RunLockedError, match=rf'train.py \(pid {os.getpid()}, started .*\) is still training'):
            RunLock(str(tmp_path / 'run')).acquire()
    assert not os.path.exists(tmp_path / 'run' / LOCK_NAME)
    with pytest.raises(ZeroDivisionError):
        with RunLock(str(tmp_path / 'run')):
            1 / 0
    assert not os.path.exists(tmp_path / 'run' / LOCK_NAME)


def test_a_live_holder_is_named_and_a_dead_one_is_taken_over(tmp_path, live_process):
    write_lock(tmp_path, live_process)
    with pytest.raises(RunLockedError, match=rf'pid {live_process}.*kill {live_process}.*another --run_name'):
        RunLock(str(tmp_path)).acquire()
    write_lock(tmp_path, live_process, host='elsewhere')
    with pytest.raises(RunLockedError, match="on host 'elsewhere'.*cannot be checked.*If no such run is alive, remove"):
        RunLock(str(tmp_path)).acquire()
    write_lock(tmp_path, dead_pid())
    with RunLock(str(tmp_path)) as lock:
        assert json.loads(open(lock.path).read())['pid'] == os.getpid()
    assert os.listdir(tmp_path) == []


def test_train_py_refuses_a_folder_in_use_before_writing_anything(tmp_path, live_process, synthetic_mpii):
    run = tmp_path / 'run'
    write_lock(run, live_process)
    with pytest.raises(RunLockedError, match=rf'pid {live_process}'):
        train.main(['--dataset_root', synthetic_mpii(16, 8, 1), '--output_dir', str(tmp_path), '--run_name', 'run',
                    *TINY_TRAIN_ARGS, '--epochs', '1'])
    assert sorted(os.listdir(run)) == [LOCK_NAME]


def test_train_py_takes_over_a_dead_runs_folder_removes_its_temporaries_and_releases(tmp_path, synthetic_mpii):
    run = tmp_path / 'run'
    write_lock(run, dead_pid())
    (run / 'best_model').mkdir()
    leftovers = [run / '.checkpoint.pdparams.tmp999999', run / 'best_model' / '.model.pdparams.tmp999999']
    for path in leftovers:
        path.write_bytes(b'half a checkpoint')
    assert train.main(['--dataset_root', synthetic_mpii(16, 8, 1), '--output_dir', str(tmp_path), '--run_name', 'run',
                       *TINY_TRAIN_ARGS, '--epochs', '1', '--max_iters', '1']) == 0
    assert not any(path.exists() for path in leftovers)
    assert not (run / LOCK_NAME).exists()
    assert 'Removed 2 temporary file(s) of a run killed while saving' in (run / 'train.log').read_text()
    assert (run / 'checkpoint.pdparams').is_file()


def test_only_other_processes_temporaries_are_removed(tmp_path):
    names = ['.checkpoint.pdparams.tmp12', f'.checkpoint.pdparams.tmp{os.getpid()}', 'checkpoint.pdparams',
             'notes.tmp12', '.tmp12', '.model.pdparams.tmpx']
    for name in names:
        (tmp_path / name).write_text('x')
    assert remove_stale_temporaries(str(tmp_path)) == [str(tmp_path / '.checkpoint.pdparams.tmp12')]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
    assert remove_stale_temporaries(str(tmp_path / 'missing')) == []


def test_atomic_save_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(('fsync', os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))))
        real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', os.path.basename(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(checkpoint.os, 'fsync', fsync)
    monkeypatch.setattr(checkpoint.os, 'replace', replace)
    atomic_save({'step': 1}, str(tmp_path / 'checkpoint.pdparams'))
    assert events == [('fsync', f'.checkpoint.pdparams.tmp{os.getpid()}'), ('replace', 'checkpoint.pdparams'),
                      ('fsync', tmp_path.name)]


def test_a_sigkilled_run_is_resumed_in_its_folder(tmp_path, synthetic_mpii):
    import signal
    import time
    from tests.helpers import REPO
    run = tmp_path / 'run'
    process = subprocess.Popen([sys.executable, '-u', 'train.py', '--dataset_root', synthetic_mpii(16, 8, 1),
                                '--output_dir', str(tmp_path), '--run_name', 'run', *TINY_TRAIN_ARGS,
                                '--epochs', '1000'], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / 'checkpoint.pdparams').exists() and
                                          'Iter [2/4]' in (run / 'train.log').read_text()):
        time.sleep(0.2)
    assert json.loads((run / LOCK_NAME).read_text())['pid'] == process.pid
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert (run / LOCK_NAME).exists()                       # nobody released it
    step = checkpoint.load_file(str(run / 'checkpoint.pdparams'))['train_state']['global_step']
    assert train.main(['--resume', str(run), '--max_iters', str(step + 1), '--eval_every', '100']) == 0
    assert checkpoint.load_file(str(run / 'checkpoint.pdparams'))['train_state']['global_step'] == step + 1
    assert not (run / LOCK_NAME).exists()
