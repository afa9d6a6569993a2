"""Fixtures shared by the test files."""
import pytest


def pytest_collection_modifyitems(config, items):
    """Tests that import TensorFlow into the test process run last, whatever the order asked for: TensorFlow's
    oneDNN and Paddle Inference's cannot share a process (tests/test_weights_tf.py)."""
    items.sort(key=lambda item: item.get_closest_marker('tensorflow_in_process') is not None)


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
