"""The training step: a skipped step changes nothing, one host read per step, a finiteness check whose cost does
not grow with the number of parameters, and a GradScaler whose skips are seen without its private state."""
import logging

import numpy as np
import paddle
import pytest

from lib.core.engine import Training, TrainState, train_step
from lib.core.loss import StackedHeatmapLoss
from lib.core.optim import build_optimizer, build_scheduler
from lib.core.precision import Precision, gradients_nonfinite
from lib.models import build_model
from lib.models.layers import batch_norm
from lib.utils.op_count import host_reads, operators_launched


def tiny_training(precision: Precision = None, max_nonfinite: int = 100):
    paddle.seed(0)
    model = build_model('hourglass', num_stacks=2, num_features=16)
    scheduler = build_scheduler(2.5e-4, [10], 0.1, iters_per_epoch=4)
    optimizer = build_optimizer('rmsprop', scheduler, model.parameters())
    precision = precision or Precision('off')
    model, optimizer = precision.prepare(model, optimizer)
    return model, Training(model, StackedHeatmapLoss('sum'), optimizer, scheduler, precision,
                           logging.getLogger('test'), num_epochs=1, total_iters=100, log_every=1,
                           max_nonfinite=max_nonfinite)


def batch(seed: int = 0, corrupt: bool = False) -> dict:
    rng = np.random.RandomState(seed)
    image = rng.randn(2, 3, 64, 64).astype('float32')
    if corrupt:
        image[0, 0, 10, 10] = np.nan
    return {'image': paddle.to_tensor(image), 'target': paddle.to_tensor(rng.rand(2, 16, 16, 16).astype('float32')),
            'target_weight': paddle.ones([2, 16, 1], dtype='float32')}


def snapshot(model, optimizer) -> dict:
    state = {f'model.{k}': v.numpy().copy() for k, v in model.state_dict().items()}
    state.update({f'optimizer.{k}': np.asarray(v.numpy() if hasattr(v, 'numpy') else v).copy()
                  for k, v in optimizer.state_dict().items() if k != 'LR_Scheduler'})
    return state


def assert_identical(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]
    assert not changed, changed[:5]


@pytest.mark.parametrize('cause', ['nan_loss', 'inf_gradient'])
def test_a_skipped_step_leaves_weights_statistics_and_optimizer_bit_identical(cause):
    model, t = tiny_training()
    state = TrainState()
    train_step(t, batch(0), state, stop_requested=False)          # optimizer state exists from here on
    before = snapshot(model, t.optimizer)
    if cause == 'nan_loss':
        loss, _, _ = train_step(t, batch(1, corrupt=True), state, stop_requested=False)
    else:   # a finite loss whose backward pass produces an inf: the check must read the gradients too
        hook = model.parameters()[0].register_hook(lambda grad: grad * float('inf'))
        loss, _, _ = train_step(t, batch(1), state, stop_requested=False)
        hook.remove()
    assert np.isnan(loss)
    assert (state.nonfinite_steps, state.applied_steps) == (1, 1)
    assert_identical(before, snapshot(model, t.optimizer))
    train_step(t, batch(2), state, stop_requested=False)            # and training goes on
    assert state.applied_steps == 2 and state.nonfinite_streak == 0


def test_the_forward_pass_does_move_the_statistics_so_the_restore_is_needed():
    """Without the restore the skipped step's forward pass would have changed the BatchNorm statistics."""
    model, t = tiny_training()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items() if k.endswith('_mean')}
    model.train()
    with paddle.no_grad():
        model(batch(1, corrupt=True)['image'])
    after = {k: v.numpy() for k, v in model.state_dict().items() if k.endswith('_mean')}
    assert any(not np.array_equal(before[k], after[k], equal_nan=True) for k in before)


def test_a_step_reads_the_device_once():
    model, t = tiny_training()
    state = TrainState()
    train_step(t, batch(0), state, stop_requested=False)
    with host_reads() as calls:
        loss, stop, _ = train_step(t, batch(1), state, stop_requested=False)
    assert calls == ['numpy'], calls
    assert np.isfinite(loss) and not stop


def test_the_finiteness_check_costs_the_same_for_any_number_of_parameters():
    counts = {}
    for num_stacks in (1, 4):
        model = build_model('hourglass', num_stacks=num_stacks, num_features=16)
        sum(out.sum() for out in model(paddle.randn([2, 3, 64, 64]))).backward()
        gradients_nonfinite(model.parameters())      # the first call also creates its constant
        counts[len(model.parameters())] = sum(operators_launched(lambda: gradients_nonfinite(model.parameters())).values())
    (few, ops_few), (many, ops_many) = sorted(counts.items())
    assert many > 3 * few
    assert ops_few == ops_many <= 4, counts      # two zero flags, the fused check, one logical_or


def test_finiteness_check_sees_each_kind_of_bad_value():
    w = paddle.create_parameter([3], 'float32')
    for bad in (float('nan'), float('inf'), -float('inf')):
        (w * paddle.to_tensor([1.0, bad, 1.0])).sum().backward()
        assert bool(gradients_nonfinite([w]))
        w.clear_gradient()
    (w * 2.0).sum().backward()
    assert not bool(gradients_nonfinite([w]))


def test_fp16_loss_scaling_unscales_exactly_and_an_overflow_is_a_skipped_step():
    """fp16's loss scaling runs on a CPU too (autocast itself only on a GPU): a power-of-two scale and the fused
    unscaling give the unscaled step bit for bit; an overflow skips the step on every Paddle version (the old check
    read GradScaler._cache_found_inf, spelt _cache_founf_inf in Paddle 2.6, so there every overflow was applied)
    and halves the scale."""
    plain_model, plain = tiny_training(Precision('off'))
    model, t = tiny_training(Precision('fp16'))
    state, plain_state = TrainState(), TrainState()
    train_step(plain, batch(0), plain_state, stop_requested=False)
    train_step(t, batch(0), state, stop_requested=False)
    assert state.applied_steps == 1 and t.precision.scaler.scale == 2.0 ** 15
    # (optimizer state is keyed by global parameter names, which differ between two models of one process)
    assert_identical({k: v for k, v in snapshot(plain_model, plain.optimizer).items() if k.startswith('model.')},
                     {k: v for k, v in snapshot(model, t.optimizer).items() if k.startswith('model.')})

    before = snapshot(model, t.optimizer)
    hook = model.parameters()[0].register_hook(lambda grad: grad * float('inf'))
    loss, _, _ = train_step(t, batch(1), state, stop_requested=False)
    hook.remove()
    assert np.isnan(loss) and state.nonfinite_steps == 1 and state.applied_steps == 1
    assert_identical(before, snapshot(model, t.optimizer))
    assert t.precision.scaler.scale == 2.0 ** 14
    train_step(t, batch(2), state, stop_requested=False)
    assert state.applied_steps == 2


def test_loss_scale_grows_after_a_run_of_good_steps():
    from lib.core.precision import LossScaler
    scaler = LossScaler(scale=8.0, growth_interval=3)
    for overflow, expected in [(False, 8), (False, 8), (False, 16), (True, 8), (False, 8), (True, 4)]:
        scaler.update(overflow)
        assert scaler.scale == expected


def test_batchnorm_running_variance_is_updated_as_pytorch_does():
    torch = pytest.importorskip('torch', reason='torch (CPU) is the reference here: pip install torch')
    ours, theirs = batch_norm(3), torch.nn.BatchNorm2d(3, momentum=0.1)
    ours.train()
    theirs.train()
    for seed, shape in enumerate([(2, 3, 1, 2), (4, 3, 2, 2), (2, 3, 8, 8)]):
        x = np.random.RandomState(seed).randn(*shape).astype('float32') * (seed + 1)
        y_ours, y_theirs = ours(paddle.to_tensor(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(y_ours, y_theirs, atol=1e-5)
    np.testing.assert_allclose(ours._mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours._variance.numpy(), theirs.running_var.numpy(), rtol=1e-5)
    plain = paddle.nn.BatchNorm2D(3, momentum=0.9)   # Paddle's own keeps the biased variance: what is corrected
    plain.train()
    plain(paddle.to_tensor(np.random.RandomState(0).randn(2, 3, 1, 2).astype('float32')))
    fresh = batch_norm(3)
    fresh.train()
    fresh(paddle.to_tensor(np.random.RandomState(0).randn(2, 3, 1, 2).astype('float32')))
    assert not np.allclose(plain._variance.numpy(), fresh._variance.numpy(), rtol=1e-3)
