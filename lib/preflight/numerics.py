"""The numerical invariants of the training step, checked on the device that will train.

Each check runs the project's own code (build_optimizer, BatchNorm2D, train_step, Precision) and compares it with
a reference computed in numpy float64, or with the state before the step: what a CPU test establishes once, redone
where the kernels differ (GPU_PATHS: cuDNN's batch_norm, the Adam kernel's branches, autocast).
"""
import logging
from typing import List, Optional, Tuple

import numpy as np
import paddle

from lib.config import TrainConfig
from lib.core.engine import Training, TrainState, train_step
from lib.core.loss import StackedHeatmapLoss
from lib.core.optim import build_optimizer, build_scheduler
from lib.core.precision import Precision, check_device_supports
from lib.models import INPUT_MULTIPLE, build_model_from
from lib.models import layers
from lib.preflight.findings import FAIL, NOT_RUN, PASS, Finding
from lib.utils.errors import BadValue, Unavailable

GRADIENT_SCALES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
FORMULA_STEPS = 20
# float32 arithmetic against float64 stays near 1e-6 after 20 steps (CPU: below 9e-7); Paddle's own RMSProp is off by
# a factor 3 at 1e-4 and 25 at 1e-5, so the bar separates rounding from a different formula by orders of magnitude.
FORMULA_BAR = 1e-4
BATCHNORM_BAR = 1e-4
# The checks force skipped steps on purpose: their warnings are not the user's concern.
QUIET = logging.getLogger('preflight.forced_skips')
QUIET.setLevel(logging.ERROR)
PRECISION_NAMES = {'off': 'float32', 'fp16': 'fp16', 'bf16': 'bf16'}


def supported_precisions(device: str) -> List[Tuple[str, Optional[str]]]:
    """(--amp mode, None when this device runs it, else why not), for off, fp16 and bf16."""
    rows = [('off', None)]
    for mode in ('fp16', 'bf16'):
        if not device.startswith('gpu'):
            rows.append((mode, 'this device runs float32 only: Paddle runs autocast on GPU, XPU and custom devices'))
            continue
        try:
            check_device_supports(mode, device)
            rows.append((mode, None))
        except Unavailable as error:
            rows.append((mode, str(error)))
    return rows


# ------------------------------------------------------------------------------------------ optimizer

def _gradients(scale: float, size: int, seed: int) -> np.ndarray:
    """[FORMULA_STEPS, size] float32 gradients of one magnitude; each entry keeps its sign (no cancellation)."""
    rng = np.random.RandomState(seed)
    sign = np.where(rng.rand(size) < 0.5, -1.0, 1.0)
    return (sign * (0.5 + np.abs(rng.randn(FORMULA_STEPS, size))) * scale).astype(np.float32)


def formula_displacement(name: str, grads: np.ndarray, lr: float, weight_decay: float) -> np.ndarray:
    """w_T - w_0 in float64 by the paper's formulas, from w_0 = 0, L2 weight decay added to the gradient (PyTorch):
    rmsprop (Newell; Torch7 / PyTorch): r <- 0.99 r + 0.01 g^2, w <- w - lr g / (sqrt(r) + 1e-8);
    adam (HRNet, MMPose; Kingma & Ba): m, v with betas 0.9 / 0.999, w <- w - lr m^ / (sqrt(v^) + 1e-8)."""
    w = np.zeros(grads.shape[1])
    first, second = np.zeros_like(w), np.zeros_like(w)
    for t, g32 in enumerate(grads, start=1):
        g = g32.astype(np.float64) + weight_decay * w
        if name == 'rmsprop':
            second = 0.99 * second + 0.01 * g * g
            w = w - lr * g / (np.sqrt(second) + 1e-8)
        else:
            first = 0.9 * first + 0.1 * g
            second = 0.999 * second + 0.001 * g * g
            w = w - lr * (first / (1 - 0.9 ** t)) / (np.sqrt(second / (1 - 0.999 ** t)) + 1e-8)
    return w


def device_displacement(name: str, grads: np.ndarray, lr: float, weight_decay: float):
    """(w_T - w_0 from the project's optimizer on this device, the optimizer)."""
    w = paddle.create_parameter([grads.shape[1]], 'float32', default_initializer=paddle.nn.initializer.Constant(0.0))
    optimizer = build_optimizer(name, lr, [w], weight_decay)
    for g in grads:
        (w * paddle.to_tensor(g)).sum().backward()     # d/dw = g
        optimizer.step()
        optimizer.clear_grad()
    return w.numpy().astype(np.float64), optimizer, w


def check_optimizer(name: str, lr: float, weight_decay: float, configured: bool) -> List[Finding]:
    worst, per_scale = 0.0, {}
    optimizer = w = None
    label = f'optimizer step = formula ({name}{", configured" if configured else ""})'
    for seed, scale in enumerate(GRADIENT_SCALES):
        grads = _gradients(scale, 64, seed)
        try:
            ours, optimizer, w = device_displacement(name, grads, lr, weight_decay)
        except BadValue as error:      # TorchRMSProp's own refusal (a flag, or its first-step formula check)
            return [Finding(label, FAIL, 'refused by the optimizer', 'the paper\'s update', str(error))]
        reference = formula_displacement(name, grads, lr, weight_decay)
        error = float(np.max(np.abs(ours - reference) / np.abs(reference)))
        per_scale[f'{scale:g}'] = error
        worst = max(worst, error) if np.isfinite(error) else float('inf')
    value = f'worst relative error {worst:.1e} over gradients 1e-2...1e-8 ({FORMULA_STEPS} steps, lr {lr:g}, wd {weight_decay:g})'
    findings = [Finding(label, PASS if worst < FORMULA_BAR else FAIL, value, f'< {FORMULA_BAR:g} vs numpy float64',
                        f'the {name} update on this device is not the paper\'s: do not train with it; attach this '
                        'report to an issue (Paddle version, device)', {'relative_error_per_scale': per_scale})]
    if name == 'rmsprop':
        places = [str(optimizer._accumulators[key][w.name].place)
                  for key in (optimizer._beta1_pow_acc_str, optimizer._beta2_pow_acc_str)]
        on_cpu = all('cpu' in place.lower() for place in places)
        findings.append(Finding('rmsprop beta powers on the CPU place', PASS if on_cpu else FAIL, ', '.join(places),
                                'Place(cpu), as Paddle\'s Adam keeps them (one kernel per parameter on a GPU)',
                                'a Paddle change moved the accumulators; report it with this file'))
    return findings


# ---------------------------------------------------------------------------------------- BatchNorm

def check_batchnorm(precision: Precision) -> Finding:
    """The project's BatchNorm2D after one training forward (momentum 0.9, from mean 0, variance 1) against
    0.9 + 0.1 x the unbiased numpy variance of the input as the kernel sees it (after autocast), in the spatial
    (H w > 1) and per-activation (H = W = 1) modes."""
    rng = np.random.RandomState(0)
    errors, decisions = {}, []
    for shape in ((4, 8, 5, 5), (16, 8, 1, 1)):
        x = (rng.randn(*shape) * 3 + 1).astype(np.float32)
        layer = layers.batch_norm(shape[1])
        layer.train()
        images = paddle.to_tensor(x)
        with precision.autocast():
            layer(images)
            key = layers.VARIANCE_PROBE.key(images, 'NCHW', shape[2] * shape[3] > 1)
        decision = layers.VARIANCE_PROBE.decisions.get(key)
        seen = paddle.to_tensor(x).astype(decision.kernel_dtype).astype('float32').numpy() if decision else x
        flat = seen.astype(np.float64).transpose(1, 0, 2, 3).reshape(shape[1], -1)
        expected = 0.9 + 0.1 * flat.var(axis=1, ddof=1)
        errors['x'.join(map(str, shape))] = float(np.max(np.abs(layer._variance.numpy() - expected) / expected))
        if decision:
            decisions.append(f'{"biased, corrected" if decision.biased else "unbiased, kept"} ({decision.kernel_dtype})')
    worst = max(errors.values())
    return Finding(f'BatchNorm running variance = unbiased ({PRECISION_NAMES[precision.mode]})',
                   PASS if worst < BATCHNORM_BAR else FAIL,
                   f'relative error {worst:.1e}; kernel probe: {"; ".join(decisions) or "not consulted"}',
                   f'< {BATCHNORM_BAR:g} vs numpy (ddof=1), as PyTorch / Torch7 keep it',
                   'the running statistics would differ from the references\' (test-time accuracy); report it',
                   {'relative_error': errors, 'probe': decisions})


# ------------------------------------------------------------------------------------ skipped steps

def small_training(config: TrainConfig, precision: Precision):
    """The configured network and optimizer at a small input, batch 2: the step machinery is the same at any size,
    and this keeps each check to seconds on a CPU. The input is twice the smallest the network takes, so that its
    lowest level keeps 2 x 2 pixels: at the smallest (1 x 1 there, n = 2 values per channel for BatchNorm) the
    8-stack hourglass's gradients reach 1e29-1e33 at initialisation and the fp16 check's first step would overflow
    for that reason alone."""
    paddle.seed(0)
    model = build_model_from(config.model)
    optimizer = build_optimizer(config.optimizer, config.lr, model.parameters(), config.weight_decay)
    model, optimizer = precision.prepare(model, optimizer)
    scheduler = build_scheduler(config.lr, [], 0.1, iters_per_epoch=1)     # train_step steps it; the lr stays
    training = Training(model, StackedHeatmapLoss(config.stack_loss), optimizer, scheduler, precision,
                        QUIET, num_epochs=1, total_iters=100, log_every=100,
                        max_nonfinite=100)
    side = 2 * max(32, INPUT_MULTIPLE.get(config.model.name, 32))
    return model, training, side


def small_batch(config: TrainConfig, side: int, seed: int, corrupt: bool = False) -> dict:
    rng = np.random.RandomState(seed)
    image = rng.randn(2, 3, side, side).astype(np.float32)
    if corrupt:
        image[0, 0, 1, 1] = np.nan
    joints = config.model.num_joints
    return {'image': paddle.to_tensor(image),
            'target': paddle.to_tensor(rng.rand(2, joints, side // 4, side // 4).astype(np.float32)),
            'target_weight': paddle.ones([2, joints, 1], dtype='float32')}


def _state(model, optimizer) -> dict:
    state = {f'model.{k}': np.asarray(v.numpy()).copy() for k, v in model.state_dict().items()}
    for key, value in optimizer.state_dict().items():
        if key == 'master_weights':          # O2's float32 copies of the weights
            state.update({f'master.{k}': np.asarray(v.numpy()).copy() for k, v in value.items()})
        elif key != 'LR_Scheduler':
            state[f'optimizer.{key}'] = np.asarray(value.numpy() if hasattr(value, 'numpy') else value).copy()
    return state


def _changed(before: dict, after: dict) -> List[str]:
    return [k for k in before if k not in after or not np.array_equal(before[k], after[k], equal_nan=True)]


def check_skipped_step(config: TrainConfig, mode: str, reason: Optional[str]) -> Finding:
    label = f'non-finite step leaves the model bit-identical ({PRECISION_NAMES[mode]}, {config.amp_level})'
    if reason:
        return Finding(label, NOT_RUN, '-', fix=reason)
    model, training, side = small_training(config, Precision(mode, config.amp_level))
    state = TrainState()
    train_step(training, small_batch(config, side, 0), state, stop_requested=False)   # optimizer state exists now
    corrupt = small_batch(config, side, 1, corrupt=True)
    before = _state(model, training.optimizer)
    loss, _, _ = train_step(training, corrupt, state, stop_requested=False)
    changed = _changed(before, _state(model, training.optimizer))
    ok = not np.isfinite(loss) and state.nonfinite_steps == 1 and not changed
    return Finding(label, PASS if ok else FAIL,
                   f'{len(before)} tensors (weights, BatchNorm statistics, optimizer state): '
                   + (f'{len(changed)} changed, e.g. {changed[:3]}' if changed else 'none changed'),
                   f'{config.model.label} at {side}x{side}, batch 2, {config.optimizer}: a NaN image, step skipped',
                   'a skipped step changed the model: weights could be spoiled by one bad batch; report it',
                   {'changed': changed[:20]})


def check_loss_scale(config: TrainConfig, reason: Optional[str], device: str) -> Finding:
    """fp16's dynamic loss scale halves on a forced overflow (gradients made inf), and that step is skipped."""
    label = 'fp16 loss scale halves on an overflow'
    if reason and device.startswith('gpu'):
        return Finding(label, NOT_RUN, '-', fix=reason)
    model, training, side = small_training(config, Precision('fp16', config.amp_level))
    state = TrainState()
    train_step(training, small_batch(config, side, 0), state, stop_requested=False)
    scale, overflows = training.precision.scaler.scale, state.overflow_steps   # (the first step may overflow too)
    before = _state(model, training.optimizer)
    hook = model.parameters()[0].register_hook(lambda grad: grad * float('inf'))
    try:
        train_step(training, small_batch(config, side, 1), state, stop_requested=False)
    finally:
        hook.remove()
    after_scale = training.precision.scaler.scale
    changed = _changed(before, _state(model, training.optimizer))
    ok = after_scale == scale / 2 and state.overflow_steps == overflows + 1 and not changed
    note = ('' if device.startswith('gpu') else
            ' (this device: float32 arithmetic, autocast is off; the loss scaler and the fused unscale run)')
    return Finding(label, PASS if ok else FAIL, f'{scale:g} -> {after_scale:g}, step skipped, '
                   f'{len(changed)} tensors changed', 'halved, skipped, nothing changed' + note,
                   'fp16 training would not recover from overflows: use --amp bf16 or off, and report it')
