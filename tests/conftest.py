"""Fixtures shared by the test files."""
import os

import pytest

# Under pytest-xdist the workers share the cores, as the ranks of a distributed run do (train.py gives each its
# share): each worker's Paddle gets cores / workers math threads through OMP_NUM_THREADS, which
# lib/utils/threads.default_threads honours. Two workers with a thread per core each would oversubscribe the
# cores, and OpenMP threads spin while they wait for each other. Set here, before any test imports Paddle.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))
if _WORKERS > 1 and 'OMP_NUM_THREADS' not in os.environ:
    os.environ['OMP_NUM_THREADS'] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))


def pytest_collection_modifyitems(config, items):
    """Tests that import TensorFlow into the test process run last, whatever the order asked for: TensorFlow's
    oneDNN and Paddle Inference's cannot share a process (tests/test_weights_tf.py); each pytest-xdist worker
    runs its tests in this order too. The slow tests (minutes each) come first, so that with `-n 2` they
    start at once and the short ones fill the other worker, instead of one worker ending alone on them."""
    items.sort(key=lambda item: (item.get_closest_marker('tensorflow_in_process') is not None,
                                 item.get_closest_marker('slow') is None))


@pytest.fixture(scope='module')
def pycocotools():
    return pytest.importorskip('pycocotools.cocoeval', reason='pycocotools is not installed (pip install pycocotools)')


@pytest.fixture(scope='session')
def synthetic_mpii(tmp_path_factory):
    """make(num_train, num_valid, seed) -> the folder of generated MPII data (lib/datasets/synthetic.py),
    generated once per session for each set of arguments."""
    from lib.datasets.synthetic import make_synthetic_mpii
    made = {}

    def make(num_train: int, num_valid: int, seed: int) -> str:
        key = (num_train, num_valid, seed)
        if key not in made:
            made[key] = str(tmp_path_factory.mktemp('synthetic_mpii'))
            make_synthetic_mpii(made[key], num_train=num_train, num_valid=num_valid, seed=seed)
        return made[key]
    return make


@pytest.fixture(scope='session')
def tiny_run(synthetic_mpii, tmp_path_factory):
    """The folder of a one-step tiny hourglass run (tests/helpers.TINY_TRAIN_ARGS) on synthetic_mpii(16, 8, 1):
    best_model/model.pdparams, checkpoint.pdparams and the run's config.json, trained once per session (per
    pytest-xdist worker) for the tests that need some trained weights and must not change them."""
    from tests.helpers import run_train
    output = tmp_path_factory.mktemp('tiny_run')
    assert run_train(synthetic_mpii(16, 8, 1), output, '--epochs', '1', '--max_iters', '1') == 0
    return os.path.join(str(output), 'run')
