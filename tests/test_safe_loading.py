"""Weights files are read without running code (lib/utils/safe_unpickle.py through checkpoint.load_file):
pickles that call os.system, subprocess, eval or exec are refused by every entry point that reads weights,
before anything in them runs; genuine files paddle.save wrote load exactly as paddle.load returns them."""
import codecs
import collections
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

import export
import infer
import train
import val
from lib.models import build_model
from lib.utils.checkpoint import load_file
from lib.utils.safe_unpickle import UnsafeWeightsError
from tests.helpers import REPO
from tools import convert_weights, draw_predictions


class Payload:
    """Unpickling calls func(*args): what a malicious weights file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: str) -> dict:
    """name -> (object whose unpickling creates `marker`, the global the refusal must name)."""
    touch = f"open({marker!r}, 'w').close()"
    # Stealthy: the state dict of a real model, in which one tensor is an eval that creates the marker and then
    # returns the genuine array, so that plain paddle.load succeeds and nothing looks wrong.
    state = {k: v.numpy() for k, v in build_model('hourglass', num_stacks=1, num_features=8).state_dict().items()}
    first = next(iter(state))
    state[first] = Payload(eval, f"({touch}, __import__('numpy').zeros({state[first].shape}, 'float32'))[1]")
    return {
        'os.system': (Payload(os.system, f'touch {marker}'), f'{os.system.__module__}.system'),
        'subprocess': (Payload(subprocess.call, ['touch', marker]), 'subprocess.call'),
        'eval': (Payload(eval, touch), 'builtins.eval'),
        'exec': ({'model': Payload(exec, touch)}, 'builtins.exec'),
        'stealthy': ({'model': state, 'train_state': {'epoch': 1}}, 'builtins.eval'),
    }


@pytest.fixture(params=['os.system', 'subprocess', 'eval', 'exec', 'stealthy'])
def evil(request, tmp_path):
    """(path of a malicious .pdparams, marker file it would create, global it asks for); the payload is shown
    to be live by plain pickle.load, which does create the marker."""
    marker = str(tmp_path / 'pwned')
    obj, name = payloads(marker)[request.param]
    path = tmp_path / 'evil' / 'model.pdparams'
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with open(path, 'rb') as f:
        pickle.load(f)
    assert os.path.exists(marker), 'the payload must be live for the test to mean anything'
    os.remove(marker)
    return str(path), marker, name


def refused(call, evil):
    path, marker, name = evil
    with pytest.raises(UnsafeWeightsError, match='refusing to run code') as error:
        call(path)
    message = str(error.value)
    assert path in message and f'asks for {name}' in message and 'Nothing in the file was run' in message
    assert not os.path.exists(marker)


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(16, 8, 1)


def test_load_file_refuses(evil):
    refused(load_file, evil)


def test_every_entry_point_refuses(evil, data_root, tmp_path):
    out = str(tmp_path / 'out')
    image = os.path.join(data_root, 'images', sorted(os.listdir(os.path.join(data_root, 'images')))[0])
    train_args = ['--dataset_root', data_root, '--output_dir', out, '--image_size', '64', '--batch_size', '2',
                  '--epochs', '1', '--workers', '0', '--device', 'cpu']
    calls = {
        'val.py': lambda p: val.main(['--pretrained_model', p, '--dataset_root', data_root, '--output_dir', out,
                                      '--workers', '0', '--device', 'cpu']),
        'infer.py': lambda p: infer.main(['--input', image, '--pretrained_model', p, '--output_dir', out,
                                          '--device', 'cpu']),
        'export.py': lambda p: export.main(['--pretrained_model', p, '--output_dir', out]),
        'draw_predictions': lambda p: draw_predictions.main(['--dataset_root', data_root, '--pretrained_model', p,
                                                             '--num', '2', '--output', out + '/d.png']),
        'train.py --resume': lambda p: train.main(['--resume', p]),
        'train.py --pretrained_backbone': lambda p: train.main([*train_args, '--model', 'pose_resnet_50',
                                                                 '--pretrained_backbone', p, '--run_name', 'b']),
        'convert_weights': lambda p: convert_weights.main(['--format', 'paddlepose_hourglass52', '--source', p,
                                                           '--output', out + '/c/model.pdparams']),
    }
    for name, call in calls.items():
        try:
            refused(call, evil)
        except BaseException as error:
            raise AssertionError(f'{name}: {error}') from error


def test_val_py_exits_non_zero_naming_file_and_global(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = tmp_path / 'model.pdparams'
    path.write_bytes(pickle.dumps(Payload(os.system, f'touch {marker}')))
    result = subprocess.run([sys.executable, 'val.py', '--pretrained_model', str(path), '--print_config'], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f'{path}: refusing to run code from a weights file: it asks for {os.system.__module__}.system' in result.stderr
    assert not os.path.exists(marker)


def test_other_globals_and_codecs_are_refused(tmp_path):
    path = tmp_path / 'w.pdparams'
    for obj in [collections.Counter('ab'), Payload(getattr, 'text', 'upper'), Payload(np.load, 'x')]:
        func = getattr(obj, 'func', type(obj))
        path.write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(UnsafeWeightsError, match=re.escape(f'asks for {func.__module__}.{func.__name__},')):
            load_file(str(path))
    # protocol 2 pickles bytes as _codecs.encode(text, 'latin1'); any other codec is refused
    path.write_bytes(pickle.dumps(Payload(codecs.encode, 'eA==', 'base64'), protocol=2))
    with pytest.raises(UnsafeWeightsError, match="encoding 'base64'"):
        load_file(str(path))


# Genuine files: the loader returns what paddle.load returns (types, keys, names, values).

def assert_same(a, b, where='file'):
    assert type(a) is type(b), f'{where}: {type(a).__name__} vs paddle.load {type(b).__name__}'
    if isinstance(a, dict):
        assert list(a) == list(b), f'{where}: keys {list(a)} vs {list(b)}'
        for key in a:
            assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    elif isinstance(a, paddle.Tensor):
        assert (a.name, a.dtype, a.shape, a.stop_gradient) == (b.name, b.dtype, b.shape, b.stop_gradient), where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


@pytest.fixture(scope='module')
def trained():
    """A tiny model and its Adam optimizer after one step (moments and beta powers are non-trivial)."""
    from lib.core.optim import build_optimizer, build_scheduler
    paddle.seed(0)
    model = build_model('hourglass', num_stacks=1, num_features=8)
    scheduler = build_scheduler(1e-3, [2], 0.1, 4, 2, 0.1)
    optimizer = build_optimizer('adam', scheduler, model.parameters(), 0.0)
    model(paddle.randn([1, 3, 64, 64]))[-1].mean().backward()
    optimizer.step()
    return model, optimizer, scheduler


@pytest.mark.parametrize('protocol', [2, 4])
def test_state_dict_and_optimizer_state_load_as_paddle_load(trained, tmp_path, protocol):
    model, optimizer, _ = trained
    for name, obj in [('model.pdparams', model.state_dict()), ('model.pdopt', optimizer.state_dict())]:
        path = str(tmp_path / name)
        paddle.save(obj, path, protocol=protocol)
        assert_same(load_file(path), paddle.load(path), name)


def test_resumable_checkpoint_loads_as_paddle_load_and_resumes(trained, tmp_path):
    from lib.config import resolve_config
    from lib.core.engine import TrainState
    from lib.core.run import save_checkpoint
    from lib.utils.checkpoint import restore_optimizer_state
    model, optimizer, scheduler = trained
    state = TrainState(epoch=1, best_mean=np.float64(0.25), history=[{'epoch': 1, 'loss': 0.5, 'Mean': np.float64(0.25)}])
    path = save_checkpoint(str(tmp_path), model, optimizer, scheduler, state, resolve_config({}))
    loaded, expected = load_file(path), paddle.load(path)
    assert_same(loaded, expected)
    other = build_model('hourglass', num_stacks=1, num_features=8)
    other.set_state_dict(loaded['model'])
    assert TrainState(**loaded['train_state']) == state
    restore_optimizer_state(optimizer, model, loaded['optimizer'])
    scheduler.set_state_dict(loaded['lr_scheduler'])


def test_arrays_saved_in_slices_are_joined_as_paddle_load(tmp_path):
    # paddle.save with protocol 2/3 cuts arrays over 1 GiB into '<key>@@.<i>' slices (io_utils._unpack_saved_dict);
    # the same layout, small.
    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    flat = weight.flatten()
    saved = {'w@@.0': flat[:10], 'w@@.1': flat[10:], 'b': np.ones(3, np.float32),
             'UnpackBigParamInfor@@': {'w': {'OriginShape': (2, 3, 4), 'slices': ['w@@.0', 'w@@.1']}},
             'StructuredToParameterName@@': {'w': 'conv2d_0.w_0', 'b': 'conv2d_0.b_0'}}
    path = str(tmp_path / 'sliced.pdparams')
    with open(path, 'wb') as f:
        pickle.dump(saved, f, protocol=2)
    loaded = load_file(path)
    assert_same(loaded, paddle.load(path))
    np.testing.assert_array_equal(loaded['w'].numpy(), weight)


def test_a_large_state_dict_loads_as_paddle_load(tmp_path):
    # 8M values in one tensor (32 MB); hourglass52's 94M-value state dict was checked by hand on Paddle 2.6 and 3.3.
    path = str(tmp_path / 'large.pdparams')
    paddle.save({'w': paddle.arange(8 * 2**20, dtype='float32').reshape([2**13, 2**10]), 'b': paddle.zeros([3])}, path)
    assert_same(load_file(path), paddle.load(path))


def test_truncated_and_foreign_files_are_named(tmp_path, trained):
    path = tmp_path / 'model.pdparams'
    paddle.save(trained[0].state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f'cannot read {path} as a Paddle weights file'):
        load_file(str(path))
    path.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='truncated or not a .pdparams'):
        load_file(str(path))
