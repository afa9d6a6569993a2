"""A full disk while training: one message naming the file, in the console and in train.log; the last good
checkpoint is kept and no temporary file is left (lib/utils/checkpoint.atomic_save, lib/utils/errors.run_cli)."""
import os
import subprocess
import sys

import pytest

from lib.utils.checkpoint import load_file
from tests.helpers import REPO, TINY_TRAIN_ARGS

DISK_KB = 800      # holds the first checkpoint (~450 KB), the best model (~140 KB) and the logs, not a second one


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of DISK_KB kB, or a skip where this process may not mount one (it needs root's CAP_SYS_ADMIN)."""
    folder = tmp_path / 'disk'
    folder.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={DISK_KB}k', 'tmpfs', str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount a small tmpfs here to fill: {mounted.stderr.strip()}')
    yield str(folder)
    subprocess.run(['umount', str(folder)], check=False)


def test_a_full_disk_ends_in_one_message_and_keeps_the_last_checkpoint(synthetic_mpii, small_disk):
    data = synthetic_mpii(8, 4, 5)
    done = subprocess.run([sys.executable, 'train.py', '--dataset_root', data, '--output_dir', small_disk,
                           '--run_name', 'run', *TINY_TRAIN_ARGS, '--epochs', '4'],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    run_dir = os.path.join(small_disk, 'run')
    assert done.returncode == 2, done.stdout + done.stderr
    assert 'Traceback' not in done.stdout + done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith('error: cannot write ') and run_dir in message and 'No space left' in message, message
    with open(os.path.join(run_dir, 'train.log')) as f:
        assert message in f.read()
    checkpoint = load_file(os.path.join(run_dir, 'checkpoint.pdparams'))
    assert checkpoint['train_state']['epoch'] >= 1          # the last good one, whole
    assert not [name for name in os.listdir(run_dir) if '.tmp' in name]
