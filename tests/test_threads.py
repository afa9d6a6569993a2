"""The whole CPU (issue 13): Paddle's CPU math threads default to the cores available to the process, an explicit
OMP_NUM_THREADS is honoured although `import paddle` overwrites an unset one, and --threads wins over both."""
import json
import os
import subprocess
import sys

from lib.utils.threads import available_cores, openmp_max_threads, set_mkl_cpu_type, use_cpu_threads
from tests.helpers import REPO

CHILD = '''
import json, os, sys
from lib.utils.threads import use_cpu_threads, openmp_max_threads   # before Paddle, as the entry scripts do
import paddle
threads = int(sys.argv[1]) if len(sys.argv) > 1 else None
print(json.dumps([use_cpu_threads(threads), openmp_max_threads()]))
'''


def child_threads(omp_num_threads=None, *args):
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    if omp_num_threads is not None:
        env['OMP_NUM_THREADS'] = omp_num_threads
    out = subprocess.run([sys.executable, '-c', CHILD, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_default_is_every_available_core_and_is_applied():
    cores = len(os.sched_getaffinity(0))
    assert available_cores() == cores
    assert child_threads() == [cores, cores]


def test_an_explicit_omp_num_threads_is_honoured():
    assert child_threads('1') == [1, 1]
    assert child_threads('3') == [3, 3]


def test_the_threads_flag_wins_over_omp_num_threads():
    assert child_threads('1', '3') == [3, 3]


def test_setting_threads_at_run_time_is_read_back():
    before = openmp_max_threads()
    try:
        assert use_cpu_threads(3) == 3 and openmp_max_threads() == 3
    finally:
        use_cpu_threads(before)


def test_mkl_cpu_type_is_set_on_amd_only_and_never_over_the_users_choice(monkeypatch):
    monkeypatch.delitem(sys.modules, 'paddle')      # as before `import paddle` in an entry script
    environ = {}
    assert set_mkl_cpu_type(environ, 'AuthenticAMD') and environ == {'MKL_DEBUG_CPU_TYPE': '5'}
    environ = {'MKL_DEBUG_CPU_TYPE': '4'}
    assert not set_mkl_cpu_type(environ, 'AuthenticAMD') and environ == {'MKL_DEBUG_CPU_TYPE': '4'}
    environ = {}
    assert not set_mkl_cpu_type(environ, 'GenuineIntel') and environ == {}


def test_mkl_cpu_type_is_left_alone_once_paddle_is_loaded():
    environ = {}
    assert 'paddle' in sys.modules and not set_mkl_cpu_type(environ, 'AuthenticAMD') and environ == {}
