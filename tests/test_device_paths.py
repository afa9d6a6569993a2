"""Each behaviour that differs on a GPU (or with a Paddle flag, an old GPU, a small /dev/shm), simulated on the CPU.

No GPU runs Paddle here, so each test recreates what Paddle's GPU code does (read in Paddle's source, cited in the
code under test) and checks that the project detects it instead of assuming the CPU's behaviour:
- cuDNN's batch_norm keeps an unbiased running variance (a fake kernel): the BatchNorm correction must do nothing;
- AMP O2's StateDictHook makes state_dict() return copies: skip-restore and rank averaging act on the live tensors;
- FLAGS_use_accuracy_compatible_kernel changes Adam's kernel: TorchRMSProp refuses it;
- Tensor.set_value(ndarray) follows the expected place (a GPU): TorchRMSProp's beta powers stay on the CPU place;
- a kernel that stops computing the paper's RMSprop is refused at the first step;
- a GPU of compute capability 7.0 runs bf16 as float32: refused;
- a 64 MB /dev/shm kills the loader's workers: refused at start, with the fix;
- hourglass52 at 384 with the 256 recipe's batch 64 per GPU: 32, as MMPose's 384 recipe;
- a host-to-device copy in the step is a second synchronisation: none left; --workers 0 copies 3 fields, not 10;
- --deterministic sets cuDNN's flags on a build that has them.
"""
import importlib
import logging
import os
import subprocess
import sys
import types

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import lib.models.layers as layers
from lib.core.engine import TrainState, train_step
from lib.core.optim import build_optimizer
from lib.core.precision import Precision
from lib.utils.errors import BadValue, Unavailable
from tests.helpers import REPO
from tests.test_train_step import assert_identical, batch, snapshot, tiny_training

REAL_BATCH_NORM = F.batch_norm


def cudnn_like_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.9,
                          epsilon=1e-5, data_format='NCHW', use_global_stats=None, name=None):
    """batch_norm as cuDNN computes it in training: normalised with the biased batch variance b, running variance
    updated with the unbiased b n / (n - 1) (cudnnBatchNormalizationForwardTraining; PyTorch's CUDA convention)."""
    if not training or use_global_stats:
        return REAL_BATCH_NORM(x, running_mean, running_var, weight, bias, training, momentum, epsilon, data_format,
                               use_global_stats, name)
    channel_axis = 1 if data_format == 'NCHW' else 3
    axes = [a for a in range(4) if a != channel_axis]
    shape = [1, -1, 1, 1] if data_format == 'NCHW' else [1, 1, 1, -1]
    xf = x.astype('float32')
    mean = xf.mean(axis=axes, keepdim=True)
    variance = ((xf - mean) ** 2).mean(axis=axes, keepdim=True)
    n = float(np.prod(xf.shape) // xf.shape[channel_axis])
    y = (xf - mean) / paddle.sqrt(variance + epsilon)
    y = y * (weight.reshape(shape) if weight is not None else 1.0) + (bias.reshape(shape) if bias is not None else 0.0)
    with paddle.no_grad():
        paddle.assign(running_mean * momentum + mean.reshape([-1]) * (1 - momentum), output=running_mean)
        paddle.assign(running_var * momentum + variance.reshape([-1]) * (n / (n - 1) * (1 - momentum)),
                      output=running_var)
    return y.astype(x.dtype)


@pytest.fixture
def fresh_probe(monkeypatch):
    """A probe with an empty cache, so that decisions made with other kernels in this process do not count (None on
    code without the probe, so that the tests show what such code computes)."""
    if not hasattr(layers, 'RunningVarianceProbe'):
        return None
    probe = layers.RunningVarianceProbe()
    monkeypatch.setattr(layers, 'VARIANCE_PROBE', probe, raising=False)
    return probe


def test_an_unbiased_cudnn_like_kernel_is_not_corrected_a_second_time(monkeypatch, fresh_probe):
    torch = pytest.importorskip('torch', reason='torch (CPU) is the reference here: pip install torch')
    monkeypatch.setattr(F, 'batch_norm', cudnn_like_batch_norm)
    ours, theirs = layers.batch_norm(3), torch.nn.BatchNorm2d(3, momentum=0.1)
    ours.train()
    for seed, shape in enumerate([(2, 3, 1, 2), (4, 3, 2, 2), (2, 3, 8, 8)]):
        x = np.random.RandomState(seed).randn(*shape).astype('float32') * (seed + 1)
        images = paddle.to_tensor(x, stop_gradient=False)
        ours(images).sum().backward()
        theirs(torch.from_numpy(x))
    # Corrected twice (main before this change): 2.0377 instead of 1.9905 in the first channel.
    np.testing.assert_allclose(ours._variance.numpy(), theirs.running_var.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours._mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5, atol=1e-7)
    assert [result.biased for result in fresh_probe.decisions.values()] == [False]


def test_an_unbiased_kernel_costs_no_extra_operator(monkeypatch, fresh_probe):
    """Where the probe finds the kernel unbiased (cuDNN), the layer runs exactly Paddle's operators (GPU_PATHS #6:
    the correction's clone/scale/subtract/assign were 5 extra operators per layer per step)."""
    from lib.utils.op_count import operators_launched
    if fresh_probe is not None:     # (code without the probe corrects on every kernel: the count below shows it)
        monkeypatch.setattr(fresh_probe, 'run', lambda dtype, data_format, spatial: layers.ProbeResult(False, 2.0, dtype))
    ours, plain = layers.batch_norm(8), paddle.nn.BatchNorm2D(8, momentum=layers.BN_MOMENTUM, epsilon=1e-5)
    x = paddle.randn([2, 8, 4, 4])
    ours(x), plain(x)     # the probe's decision is cached from here on
    assert sum(operators_launched(lambda: ours(x)).values()) == sum(operators_launched(lambda: plain(x)).values())
    np.testing.assert_array_equal(ours._variance.numpy(), plain._variance.numpy())


def test_the_probe_runs_once_per_kernel_key_and_leaves_the_layers_statistics_alone(monkeypatch, fresh_probe):
    calls = []

    def counting(dtype, data_format, spatial):
        calls.append((dtype, data_format, spatial))
        return layers.probe_running_variance(dtype, data_format, spatial)
    monkeypatch.setattr(fresh_probe, 'run', counting)
    model = layers.batch_norm(4)
    model.train()
    for shape in ([2, 4, 3, 3], [4, 4, 5, 5], [8, 4, 1, 1], [8, 4, 1, 1]):
        model(paddle.randn(shape))
    # spatial (H w > 1) and per-activation (H = W = 1) are two cuDNN modes, so two probes; each one only once
    assert calls == [('float32', 'NCHW', True), ('float32', 'NCHW', False)]
    # the CPU kernel is biased: the decisions say so, with what the kernel wrote for [0, 2]
    assert [(r.biased, r.running_variance) for r in fresh_probe.decisions.values()] == [(True, 1.0), (True, 1.0)]
    before = model._variance.numpy().copy()
    layers.probe_running_variance('float32', 'NCHW', True)
    np.testing.assert_array_equal(model._variance.numpy(), before)


def test_the_probe_works_in_a_to_static_training_forward(fresh_probe):
    model = layers.batch_norm(4)
    model.train()
    static = paddle.jit.to_static(model, full_graph=True)
    y = static(paddle.randn([2, 4, 3, 3]))
    assert y.shape == [2, 4, 3, 3] and len(fresh_probe.decisions) == 1


# ------------------------------------------------------------------------- AMP O2's state-dict hook


def with_o2_state_dict_hook(model):
    """What paddle.amp.decorate(level='O2', save_dtype='float32') adds on a GPU (python/paddle/amp/auto_cast.py:
    a StateDictHook on every sublayer); on a CPU decorate returns before adding it, so it is added by hand."""
    for layer in model.sublayers(include_self=True):
        layer.register_state_dict_hook(importlib.import_module("paddle.amp.auto_cast").StateDictHook('float32'))
    return model


def test_under_the_o2_state_dict_hook_a_skipped_step_still_restores_the_live_statistics():
    model, t = tiny_training()
    with_o2_state_dict_hook(model)
    bn = next(layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D))
    assert all(value is not bn._mean for value in model.state_dict().values())    # the hook hands out copies
    state = TrainState()
    train_step(t, batch(0), state, stop_requested=False)
    before_live = (bn._mean.numpy().copy(), bn._variance.numpy().copy())
    before = snapshot(model, t.optimizer)
    loss, _, _ = train_step(t, batch(1, corrupt=True), state, stop_requested=False)
    assert np.isnan(loss) and state.nonfinite_steps == 1
    np.testing.assert_array_equal(bn._mean.numpy(), before_live[0])
    np.testing.assert_array_equal(bn._variance.numpy(), before_live[1])
    assert_identical(before, snapshot(model, t.optimizer))


def test_under_the_o2_state_dict_hook_rank_averaging_changes_the_live_statistics(monkeypatch):
    from lib.utils import distributed
    model, _ = tiny_training()
    with_o2_state_dict_hook(model)
    bn = next(layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D))
    mean = bn._mean.numpy().copy()

    def all_reduce(tensor, *args, **kwargs):      # a second rank whose statistics are ours + 2
        paddle.assign(tensor * 2 + 2, output=tensor)
    monkeypatch.setattr(distributed.dist, 'all_reduce', all_reduce)
    distributed.average_running_statistics(model, num_ranks=2)
    np.testing.assert_allclose(bn._mean.numpy(), mean + 1, rtol=1e-6)


# ------------------------------------------------------------------------------------ TorchRMSProp


@pytest.fixture
def accuracy_compatible_flag():
    name = 'FLAGS_use_accuracy_compatible_kernel'
    if not paddle.base.core.globals().is_public(name):
        pytest.skip(f'{name} does not exist in Paddle {paddle.__version__} (it exists from 3.2.2)')
    paddle.set_flags({name: True})
    yield name
    paddle.set_flags({name: False})


def test_rmsprop_refuses_the_accuracy_compatible_adam_kernel(accuracy_compatible_flag):
    w = paddle.create_parameter([4], 'float32')
    with pytest.raises(BadValue, match='FLAGS_use_accuracy_compatible_kernel is set.*--optimizer adam'):
        build_optimizer('rmsprop', 1e-3, [w])
    # Paddle's own Adam (beta1 = 0.9) is what the message suggests instead, and it is not refused
    build_optimizer('adam', 1e-3, [w])


def test_rmsprop_keeps_its_beta_powers_on_the_cpu_place_whatever_the_expected_place(monkeypatch):
    """On a GPU the expected place is CUDAPlace; set_value(ndarray) would move the powers there
    (GPU_PATHS #4). A CUDAPinnedPlace, which a CPU-only build refuses, stands in for it."""
    from paddle.base import framework
    warm = paddle.create_parameter([2], 'float32')
    warm_up = build_optimizer('rmsprop', 1e-3, [warm])     # the once-per-device formula check, before the patch
    (warm * 1.0).sum().backward()
    warm_up.step()
    w = paddle.create_parameter([8], 'float32')
    optimizer = build_optimizer('rmsprop', 1e-3, [w])
    (w * 2.0).sum().backward()
    monkeypatch.setattr(framework, '_current_expected_place', lambda: paddle.CUDAPinnedPlace())
    optimizer.step()
    monkeypatch.undo()
    for name in (optimizer._beta1_pow_acc_str, optimizer._beta2_pow_acc_str):
        accumulator = optimizer._accumulators[name][w.name]
        assert accumulator.place.is_cpu_place() and float(accumulator.numpy()[0]) == 0.0


def test_rmsprop_refuses_a_kernel_that_no_longer_computes_the_papers_update(monkeypatch):
    from lib.core import optim
    original = paddle._C_ops.adam_

    def drifting_adam(param, *args, **kwargs):    # a kernel whose step is 1 % too long
        before = param.numpy().copy()
        out = original(param, *args, **kwargs)
        paddle.assign(paddle.to_tensor(before + (param.numpy() - before) * 1.01), output=param)
        return out
    monkeypatch.setattr(paddle._C_ops, 'adam_', drifting_adam)
    monkeypatch.setattr(optim, '_FORMULA_CHECKED', set(), raising=False)
    w = paddle.create_parameter([4], 'float32')
    optimizer = build_optimizer('rmsprop', 1e-3, [w])
    (w * 2.0).sum().backward()
    with pytest.raises(BadValue, match="no longer computes the paper's RMSprop update"):
        optimizer.step()


# --------------------------------------------------------------------------- precision and devices


def pretend_gpu(monkeypatch, capability, cuda='12.0'):
    monkeypatch.setattr(paddle, 'get_device', lambda: 'gpu:0')
    monkeypatch.setattr(paddle.device.cuda, 'get_device_capability', lambda *args: capability)
    monkeypatch.setattr(paddle.version, 'cuda', lambda: cuda)


def test_bf16_on_a_gpu_without_it_is_refused_instead_of_running_float32(monkeypatch):
    pretend_gpu(monkeypatch, (7, 0))           # V100
    with pytest.raises(Unavailable, match=r'--amp bf16 needs .* capability 8.0 .* has 7.0.*--amp fp16'):
        Precision('bf16', 'O1')
    assert Precision('fp16', 'O2').dtype == 'float16'     # fp16 needs 7.0: fine on a V100
    pretend_gpu(monkeypatch, (6, 1))           # P100 / GTX 10xx
    with pytest.raises(Unavailable, match='--amp fp16 needs .* 7.0'):
        Precision('fp16')
    pretend_gpu(monkeypatch, (8, 0), cuda='10.2')
    with pytest.raises(Unavailable, match='CUDA 11'):
        Precision('bf16')
    pretend_gpu(monkeypatch, (8, 0))           # A100
    assert Precision('bf16').dtype == 'bfloat16'


def test_a_small_dev_shm_is_refused_at_start_with_the_fix(monkeypatch, synthetic_mpii):
    import shutil
    from lib.config import preset_config
    from lib.datasets import loaders
    config = preset_config('hourglass', synthetic_mpii(16, 8, 1))
    dataset = loaders.build_dataset(config.data, 'train', is_train=True)
    isdir = os.path.isdir
    monkeypatch.setattr(os.path, 'isdir', lambda path: path == '/dev/shm' or isdir(path))
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: types.SimpleNamespace(free=64 * 2**20))   # Docker's default
    # 2 batches in flight x 4 workers x 16 x (image 3 x 256 x 256 + target 16 x 64 x 64) float32: ~134 MB (GPU_PATHS #7)
    with pytest.raises(Unavailable, match=r'needs 12\d MiB of shared memory .* has 64 MiB free.*--workers 1'):
        loaders.train_loader(dataset, batch_size=16, workers=4, seed=0)
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: types.SimpleNamespace(free=2**30))
    loaders.train_loader(dataset, batch_size=16, workers=4, seed=0)


def test_a_training_step_copies_nothing_from_the_host(monkeypatch):
    """Main's stop vote was paddle.to_tensor([...]): a cudaMemcpy from pageable memory, a second synchronisation."""
    model, t = tiny_training()
    state, b0, b1 = TrainState(), batch(0), batch(1)
    train_step(t, b0, state, stop_requested=False)
    copies = []
    original = paddle.to_tensor
    monkeypatch.setattr(paddle, 'to_tensor', lambda *a, **k: copies.append(1) or original(*a, **k))
    loss, stop, _ = train_step(t, b1, state, stop_requested=True)
    assert copies == []
    assert np.isfinite(loss) and stop      # the vote still travels
    monkeypatch.undo()
    from lib.utils.op_count import host_syncs
    b2 = batch(2)
    with host_syncs() as syncs:
        train_step(t, b2, state, stop_requested=False)
    assert syncs == {'reads': ['numpy'], 'copies': []}
    with host_syncs() as syncs:
        paddle.to_tensor([1.0]), paddle.to_tensor([1.0], place=paddle.CPUPlace())    # the counter does count copies
    assert syncs == {'reads': [], 'copies': ['to_tensor']}


def test_the_in_process_loader_puts_only_what_the_step_needs_on_the_device(monkeypatch, synthetic_mpii):
    from lib.config import preset_config
    from lib.datasets import loaders
    config = preset_config('hourglass', synthetic_mpii(16, 8, 1), input_wh=(64, 64))
    loader = loaders.train_loader(loaders.build_dataset(config.data, 'train', is_train=True), 4, workers=0, seed=0)
    places = {}
    original = paddle.to_tensor

    def recording(data, *args, **kwargs):
        tensor = original(data, *args, **kwargs)
        places[tuple(tensor.shape)] = kwargs.get('place')
        return tensor
    monkeypatch.setattr(paddle, 'to_tensor', recording)
    first = next(iter(loader))
    on_device = sorted(name for name, tensor in first.items() if places[tuple(tensor.shape)] is None)
    assert on_device == ['image', 'target', 'target_weight'], on_device
    assert first['center'].place.is_cpu_place() and first['index'].numpy().shape == (4,)


def test_hourglass52_at_384_trains_32_per_gpu_as_mmposes_recipe():
    """MMPose td-hm_hourglass52_8xb32-210e_mpii-384x384 (main kept the 256 recipe's 64: GPU_PATHS #8)."""
    from lib.config import resolve_config
    assert resolve_config({'model.name': 'hourglass52', 'data.input_wh': (384, 384)}).batch_size == 32
    assert resolve_config({'model.name': 'hourglass52'}).batch_size == 64
    assert resolve_config({'model.name': 'hourglass52', 'data.input_wh': (384, 384), 'batch_size': 8}).batch_size == 8
    assert resolve_config({'model.name': 'hourglass', 'data.input_wh': (384, 384)}).batch_size == 16


def test_deterministic_sets_cudnns_flags_where_the_build_has_them(monkeypatch):
    from lib.utils import device
    assert device.use_deterministic_kernels(False) == {}
    assert device.use_deterministic_kernels(True) == {} or paddle.is_compiled_with_cuda()   # a CPU build: none
    registry = {'FLAGS_cudnn_deterministic': False, 'FLAGS_cudnn_exhaustive_search': True,
                'FLAGS_cudnn_batchnorm_spatial_persistent': False}
    fake = types.SimpleNamespace(is_public=lambda name: name in registry)
    monkeypatch.setattr(paddle.base.core, 'globals', lambda: fake)
    monkeypatch.setattr(paddle, 'set_flags', lambda flags: registry.update(flags))
    device.use_deterministic_kernels(True)
    assert registry == {'FLAGS_cudnn_deterministic': True, 'FLAGS_cudnn_exhaustive_search': False,
                        'FLAGS_cudnn_batchnorm_spatial_persistent': False}


def test_deterministic_is_a_config_key_and_a_flag():
    from lib.cli import TRAINING_GROUPS, flags_of
    from lib.config import resolve_config
    assert any(flag.name == 'deterministic' for flag in flags_of(TRAINING_GROUPS))
    assert resolve_config({'deterministic': True}).deterministic is True
    assert resolve_config({}).deterministic is False


# ------------------------------------------------------------------------------------- divergence


def test_a_diverging_run_ends_non_zero_names_the_cause_and_keeps_no_best_model(synthetic_mpii, tmp_path):
    """`train.py --lr 1e12` (main: 11 of 12 steps skipped, validated at Mean 0.000, kept as best, exit 0, "Done")."""
    command = [sys.executable, 'train.py', '--dataset_root', synthetic_mpii(24, 8, 1), '--output_dir', str(tmp_path),
               '--run_name', 'run', '--image_size', '64', '--num_stacks', '1', '--num_features', '16',
               '--batch_size', '4', '--workers', '0', '--log_every', '1', '--val_batch_size', '8', '--device', 'cpu',
               '--epochs', '2', '--lr', '1e12']
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS='ignore'))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert 'Training diverged' in output and 'lower --lr (this one: 1e+12)' in output and 'check the data' in output
    assert 'Done' not in output and 'New best' not in output
    run = tmp_path / 'run'
    assert not (run / 'best_model').exists() and not (run / 'checkpoint.pdparams').exists()
    assert 'Training diverged' in (run / 'train.log').read_text()


def test_fp16_overflow_skips_are_counted_apart_and_are_not_a_divergence():
    from lib.core.engine import Diverged, check_divergence
    _, t = tiny_training(Precision('fp16'))
    routine = TrainState(iteration=4, global_step=4, nonfinite_steps=3, overflow_steps=3, epoch_diverged_steps=0)
    check_divergence(t, routine, epoch_len=4, epoch_over=True)             # 3 of 4 skipped, all overflows: fine
    diverged = TrainState(iteration=3, global_step=3, nonfinite_steps=3, overflow_steps=0, epoch_diverged_steps=3)
    with pytest.raises(Diverged, match='3 of the 4 steps of epoch 1'):
        check_divergence(t, diverged, epoch_len=4, epoch_over=False)       # certain before the epoch ends
    short = TrainState(iteration=3, global_step=3, nonfinite_steps=2, epoch_diverged_steps=2)
    check_divergence(t, short, epoch_len=100, epoch_over=False)
    with pytest.raises(Diverged, match='2 of the 3 steps run'):             # a run cut short by --max_iters
        check_divergence(t, short, epoch_len=100, epoch_over=True)


def test_an_overflow_skip_is_logged_as_routine(caplog):
    _, t = tiny_training(Precision('fp16'))
    t.logger = logging.getLogger('test_overflow')
    model = t.model
    state = TrainState()
    train_step(t, batch(0), state, stop_requested=False)
    hook = model.parameters()[0].register_hook(lambda grad: grad * float('inf'))
    with caplog.at_level(logging.WARNING, logger='test_overflow'):
        train_step(t, batch(1), state, stop_requested=False)
    hook.remove()
    assert (state.nonfinite_steps, state.overflow_steps, state.epoch_diverged_steps) == (1, 1, 0)
    assert 'fp16 loss-scale overflow' in caplog.text and 'loss scale now 16384' in caplog.text
