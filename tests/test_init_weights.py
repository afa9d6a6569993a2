"""train.py --init_weights: a run starts from the whole model's weights of a file (read without running code), every
key and shape checked, non-finite weights refused; --resume keeps its own weights."""
import os

import numpy as np
import paddle
import pytest

from lib.core.run import load_init_weights
from lib.models import build_model
from lib.utils.checkpoint import load_file
from lib.utils.errors import BadValue, NonFinite
from tests.helpers import run_train


def _state(path):
    return {k: np.asarray(v) for k, v in load_file(path).items()}


def test_a_run_starts_from_the_given_weights(synthetic_mpii, tiny_run, tmp_path):
    """One step at lr 1e-30 (below float32's resolution of the weights): the run's saved weights are the file's,
    not a fresh initialisation with the run's seed."""
    start = os.path.join(tiny_run, 'best_model', 'model.pdparams')
    assert run_train(synthetic_mpii(16, 8, 1), tmp_path, '--epochs', '1', '--max_iters', '1', '--lr', '1e-30',
                     '--seed', '5', '--init_weights', start) == 0
    ours, theirs = _state(start), load_file(os.path.join(tmp_path, 'run', 'checkpoint.pdparams'))['model']
    convs = [k for k in ours if k.endswith('conv.weight')]
    assert convs
    for key in convs:       # weights only: one step in train mode moves the BatchNorm statistics
        np.testing.assert_array_equal(np.asarray(theirs[key]), ours[key], err_msg=key)


def test_weights_of_another_model_are_refused_naming_the_keys(tiny_run):
    paddle.seed(0)
    two_stacks = build_model('hourglass', num_stacks=2, num_features=16, num_joints=16)
    with pytest.raises(BadValue) as error:
        load_init_weights(two_stacks, os.path.join(tiny_run, 'best_model', 'model.pdparams'))
    message = str(error.value)
    assert 'missing keys: hourglasses.1.' in message
    assert 'Pass weights of the same model' in message


def test_non_finite_weights_are_refused(tiny_run, tmp_path):
    state = load_file(os.path.join(tiny_run, 'best_model', 'model.pdparams'))
    key = sorted(state)[0]
    state[key] = np.full(np.shape(state[key]), np.nan, dtype=np.float32)
    path = str(tmp_path / 'nan.pdparams')
    paddle.save({k: paddle.to_tensor(np.asarray(v)) for k, v in state.items()}, path)
    paddle.seed(0)
    model = build_model('hourglass', num_stacks=1, num_features=16, num_joints=16)
    with pytest.raises(NonFinite, match=f'holds inf or NaN in 1 tensors \\({key}\\)'):
        load_init_weights(model, path)
