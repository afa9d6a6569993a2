"""The whole CPU: how many math threads Paddle uses on the CPU, set first thing by each entry script.

`import paddle` sets OMP_NUM_THREADS=1 when it is unset (paddle/base/__init__.py, __bootstrap__), so a
dygraph run on the CPU computes on one core unless told otherwise. This module reads the user's
OMP_NUM_THREADS when it is imported, which the entry scripts do before Paddle; `use_cpu_threads` then sets
Paddle's CPU math threads at run time (paddle.base.core.set_num_threads, present in Paddle 2.6 and 3.x).
The default is every core this process may run on (os.sched_getaffinity: a container's or taskset's share,
not the machine's), or the user's OMP_NUM_THREADS when set. DataLoader workers keep one thread each.

On AMD CPUs, set_mkl_cpu_type puts MKL_DEBUG_CPU_TYPE=5 (the MKL Paddle ships then takes its AVX2 code path
instead of the generic one) unless the user set the variable. Measured with benchmarks/mkl_cpu_type.py on
an AMD EPYC: a hourglass forward pass differs by 3e-7 at most (heatmaps up to 0.4: float32 rounding, as a
different summation order gives); README, "Using the whole CPU".
"""
import argparse
import ctypes
import glob
import os
import sys
from typing import Optional

from lib.utils.errors import BadValue

# OMP_NUM_THREADS as the user set it: read before `import paddle` overwrites an unset one with 1.
USER_OMP_NUM_THREADS = None if 'paddle' in sys.modules else os.environ.get('OMP_NUM_THREADS')


def cpu_vendor() -> str:
    """'AuthenticAMD', 'GenuineIntel', ... from /proc/cpuinfo; '' when unknown."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('vendor_id'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


def set_mkl_cpu_type(environ=os.environ, vendor: Optional[str] = None) -> bool:
    """MKL_DEBUG_CPU_TYPE=5 on an AMD CPU when the user has not set it and Paddle (which loads MKL) is not
    imported yet; returns whether it was set. Entry scripts call it before importing Paddle."""
    vendor = cpu_vendor() if vendor is None else vendor
    if vendor != 'AuthenticAMD' or 'MKL_DEBUG_CPU_TYPE' in environ or 'paddle' in sys.modules:
        return False
    environ['MKL_DEBUG_CPU_TYPE'] = '5'
    return True


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """The user's OMP_NUM_THREADS when set (and a positive integer), else every available core."""
    try:
        threads = int(USER_OMP_NUM_THREADS or 0)
    except ValueError:
        threads = 0
    return threads if threads > 0 else available_cores()


def positive_threads(text: str) -> int:
    """argparse type of --threads: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive number of threads; e.g. --threads '
                                         f'{available_cores()} (the cores available here)')
    return value


def add_threads_argument(parser) -> None:
    parser.add_argument('--threads', type=positive_threads, default=None,
                        help='CPU math threads of Paddle (default: OMP_NUM_THREADS when set, else the cores '
                        f'available to this process, here {available_cores()})')


def use_cpu_threads(threads: Optional[int] = None) -> int:
    """Set Paddle's CPU math threads to `threads` (default: default_threads()); returns the number set."""
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise BadValue(f'--threads {threads}: expected a positive number of threads, e.g. --threads '
                       f'{available_cores()} (the cores available here).')
    from paddle.base import core
    core.set_num_threads(threads)
    return threads


def openmp_max_threads() -> Optional[int]:
    """omp_get_max_threads() of the OpenMP runtime Paddle ships (libiomp5), i.e. the setting read back; None
    when Paddle ships none."""
    import paddle
    for path in glob.glob(os.path.join(os.path.dirname(paddle.__file__), 'libs', 'libiomp5*.so*')):
        return ctypes.CDLL(path).omp_get_max_threads()
    return None
