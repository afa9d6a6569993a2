"""After SIGKILL of train.py no DataLoader worker outlives it (lib/utils/processes.die_with_parent)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, TINY_TRAIN_ARGS


def children_of(pid: int) -> list:
    """Pids whose parent is `pid`, from /proc."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open(f'/proc/{name}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != 'Z':
                found.append(int(name))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='the parent-death signal is Linux only')
def test_loader_workers_die_with_a_killed_train_py(synthetic_mpii, tmp_path):
    data = synthetic_mpii(32, 8, 3)
    args = [a for a in TINY_TRAIN_ARGS if a not in ('--workers', '0')]
    run = subprocess.Popen([sys.executable, 'train.py', '--dataset_root', data, '--output_dir', str(tmp_path),
                            *args, '--workers', '2', '--epochs', '50'],
                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        workers = []
        while time.time() < deadline and len(workers) < 2 and run.poll() is None:
            time.sleep(0.5)
            workers = children_of(run.pid)
        assert len(workers) >= 2, f'train.py did not start its 2 loader workers (exit {run.poll()})'
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not any(alive(pid) for pid in workers), f'workers {workers} outlived the killed train.py'
    finally:
        if run.poll() is None:
            run.kill()
