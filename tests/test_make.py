"""The two commands of the README (Makefile): make quickstart and make test. Dry runs only: nothing is installed."""
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')


def make(*args) -> str:
    return subprocess.run(['make', '-s', '-C', REPO, '--no-print-directory', *args], capture_output=True, text=True,
                          check=True).stdout


def test_an_installed_paddle_is_kept():
    out = make('install', 'PIP=echo pip install', f'PYTHON={sys.executable}')
    assert 'Paddle is installed already: kept as it is' in out
    assert 'paddlepaddle' not in out and 'pip install -r requirements.txt' in out


def test_the_cpu_paddle_is_installed_only_when_no_paddle_is_found():
    out = make('install', 'PIP=echo pip install', f'PYTHON={sys.executable} -S')   # -S: no site-packages
    assert 'No Paddle found' in out and 'pip install paddlepaddle==3.3.1' in out


def test_quickstart_runs_the_readme_quick_start_end_to_end(tmp_path):
    out = make('-n', 'quickstart', f'DATA={tmp_path}/data', f'OUTPUT={tmp_path}/out')
    for step in ('tools/make_synthetic_mpii.py', 'train.py', 'val.py', 'tools/draw_predictions.py'):
        assert step in out


def test_ci_runs_make_test_which_runs_ruff_and_pytest_with_skip_reasons():
    out = make('-n', 'test')
    # ruff of $(PYTHON), which pip installed there: a bare `ruff` is not on PATH in a venv that is not activated
    assert '-m ruff check .' in out and '-m pytest -q -rs -n 2 --dist loadgroup' in out   # 2 xdist workers
    for package in ('pytest pytest-xdist ruff', '-r requirements-extras.txt', 'torch==', 'tensorflow-cpu'):
        assert package in out
    assert 'make test' in open(f'{REPO}/.ci/run').read()
