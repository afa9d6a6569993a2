"""Checkpoint files: atomic writes, strict loading, and optimizer state that resumes in any process."""
import os

import numpy as np
import paddle
import pytest

from lib.core.optim import build_optimizer, build_scheduler
from lib.models import build_model
from lib.utils import checkpoint
from lib.convert.loading import load_weights
from lib.utils.checkpoint import (atomic_save, portable_optimizer_state, restore_optimizer_state,
                                  save_weights)


def tiny_model():
    return build_model('hourglass', num_stacks=1, num_features=8)


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / 'checkpoint.pdparams'
    atomic_save({'step': 1}, str(path))

    def broken_save(obj, target):
        with open(target, 'wb') as f:
            f.write(b'half a file')
        raise OSError('disk full')
    monkeypatch.setattr(checkpoint.paddle, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        atomic_save({'step': 2}, str(path))
    monkeypatch.undo()
    assert paddle.load(str(path)) == {'step': 1}
    assert os.listdir(tmp_path) == ['checkpoint.pdparams']


def test_weights_round_trip(tmp_path):
    model, other = tiny_model(), tiny_model()
    save_weights(model, str(tmp_path / 'w.pdparams'))
    load_weights(other, str(tmp_path / 'w.pdparams'))
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_unreadable_weights_file_is_named(tmp_path):
    path = tmp_path / 'truncated.pdparams'
    path.write_bytes(b'\x80\x04garbage')
    with pytest.raises(ValueError, match='cannot read .*truncated.pdparams'):
        load_weights(tiny_model(), str(path))


def test_unexpected_keys_are_listed(tmp_path):
    model = tiny_model()
    state = dict(model.state_dict())
    state['extra.weight'] = paddle.zeros([1])
    paddle.save(state, str(tmp_path / 'w.pdparams'))
    with pytest.raises(ValueError, match=r'missing keys: none\n  unexpected keys: extra\.weight'):
        load_weights(tiny_model(), str(tmp_path / 'w.pdparams'))


def test_optimizer_state_survives_a_process_that_named_its_parameters_differently(tmp_path):
    """Paddle names parameters with global counters (conv2d_12.w_0); build one model more before the
    second copy, so every name differs, and the state must still land on the right parameters: the
    restored copy then takes exactly the step the original takes."""
    def step(model, optimizer, seed):
        paddle.seed(seed)
        loss = paddle.add_n([out.mean() for out in model(paddle.randn([2, 3, 64, 64]))])
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    model = tiny_model()
    optimizer = build_optimizer('rmsprop', build_scheduler(1e-3, [10], 0.1, iters_per_epoch=5), model.parameters())
    step(model, optimizer, 1)
    atomic_save(portable_optimizer_state(optimizer, model), str(tmp_path / 'optimizer.pdopt'))
    saved = paddle.load(str(tmp_path / 'optimizer.pdopt'))       # a copy, as when resuming from a file
    assert any(key.startswith('stem.0.conv.weight_') for key in saved)

    tiny_model()                                   # shifts the global parameter-name counters
    copy = tiny_model()
    copy.set_state_dict(model.state_dict())
    copy_optimizer = build_optimizer('rmsprop', build_scheduler(1e-3, [10], 0.1, iters_per_epoch=5),
                                     copy.parameters())
    restore_optimizer_state(copy_optimizer, copy, saved)
    step(model, optimizer, 2)
    step(copy, copy_optimizer, 2)
    for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
