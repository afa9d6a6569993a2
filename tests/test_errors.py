"""lib/utils/errors.py: a user's mistake ends in one message and exit 2, a bug keeps its traceback, --debug and
POSE_DEBUG=1 show every traceback, and an error of a DataLoader worker reaches the user as its own message."""
import subprocess
import sys

import numpy as np
import pytest

from lib.utils.errors import (EXIT_USER_ERROR, BadValue, UnreadableFile, clean_message, run_cli,
                              user_message)
from tests.helpers import REPO


def failing_main(error):
    def main(argv=None):
        raise error
    return main


def test_a_user_error_is_one_line_and_exit_2(capsys):
    assert run_cli(failing_main(BadValue('--lr 0: expected > 0.')), []) == EXIT_USER_ERROR
    assert capsys.readouterr().err == 'error: --lr 0: expected > 0.\n'


def test_a_bug_keeps_its_traceback():
    with pytest.raises(KeyError):
        run_cli(failing_main(KeyError('internal')), [])


@pytest.mark.parametrize('how', ['flag', 'environment'])
def test_debug_shows_the_traceback_of_a_user_error(how, monkeypatch):
    argv = ['--debug'] if how == 'flag' else []
    if how == 'environment':
        monkeypatch.setenv('POSE_DEBUG', '1')
    with pytest.raises(BadValue):
        run_cli(failing_main(BadValue('bad')), argv)


def test_a_full_disk_names_the_path():
    error = OSError(28, 'No space left on device', '/data/run/checkpoint.pdparams')
    assert user_message(error) == ('cannot access /data/run/checkpoint.pdparams: No space left on device; free space '
                                   'there, or choose another output folder.')
    assert user_message(OSError(5, 'Input/output error')) is None     # not known to be the user's: a traceback


def test_the_message_of_a_worker_error_is_recovered():
    """Paddle re-raises a worker's exception as type(error)(text holding the worker's traceback)."""
    wrapped = ('DataLoader worker(1) caught UnreadableFile with message:\nTraceback (most recent call last):\n'
               '  File "x.py", line 1, in f\nlib.utils.errors.UnreadableFile: cannot read image a.jpg: it does not '
               'exist.\nSecond line.\n')
    assert clean_message(UnreadableFile(wrapped)) == 'cannot read image a.jpg: it does not exist.\nSecond line.'


class RaisingDataset:
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 5:
            raise UnreadableFile('cannot read image img5.jpg: it does not exist.')
        return {'image': np.zeros(3, np.float32)}


WORKER_SCRIPT = '''
import sys
sys.path.insert(0, {repo!r})
from paddle.io import BatchSampler
from lib.datasets.loaders import _loader
from lib.utils.errors import run_cli
from tests.test_errors import RaisingDataset
def main(argv=None):
    dataset = RaisingDataset()
    for batch in _loader(dataset, BatchSampler(dataset, batch_size=2), int(sys.argv[1])):
        pass
sys.exit(run_cli(main))
'''


@pytest.mark.parametrize('workers', [0, 2])
def test_an_error_in_the_data_pipeline_is_one_message_naming_the_image(workers, tmp_path):
    """With workers, Paddle's reader thread fails first and the main thread sees "Blocking queue is killed";
    without, Paddle's single-process loader would wait for ever (lib/datasets/loaders.InProcessLoader)."""
    script = tmp_path / 'run.py'
    script.write_text(WORKER_SCRIPT.format(repo=REPO))
    done = subprocess.run([sys.executable, str(script), str(workers)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    assert 'Traceback' not in done.stderr and 'Blocking queue' not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == 'error: cannot read image img5.jpg: it does not exist.'


def test_the_scripts_exit_2_without_a_traceback_and_show_it_with_debug(tmp_path):
    command = [sys.executable, 'val.py', '--preds_file', str(tmp_path / 'pred.mat'), '--dataset_root',
               str(tmp_path), '--output_dir', str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_USER_ERROR and 'Traceback' not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith('error: ') and str(tmp_path) in done.stderr
    debug = subprocess.run(command + ['--debug'], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and 'Traceback (most recent call last)' in debug.stderr
