"""Optimizer and learning-rate schedule (SPEC G, I)."""
from bisect import bisect_right
from typing import Sequence

import numpy as np
import paddle
from lib.utils.errors import BadValue


class WarmupMultiStepDecay(paddle.optimizer.lr.LRScheduler):
    """Step decay at given iterations, after an optional linear warm-up; stepped after every iteration.

    lr(i) = base x gamma^(number of milestones <= i), times warmup_ratio + (1 - warmup_ratio) x i / warmup_iters
    while i < warmup_iters (MMPose's LinearLR warm-up). `last_epoch` counts iterations here.
    """

    def __init__(self, learning_rate: float, milestones: Sequence[int], gamma: float, warmup_iters: int = 0,
                 warmup_ratio: float = 0.001, last_epoch: int = -1):
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        super().__init__(learning_rate, last_epoch)

    def get_lr(self) -> float:
        step = max(self.last_epoch, 0)
        lr = self.base_lr * self.gamma ** bisect_right(self.milestones, step)
        if step < self.warmup_iters:
            lr *= self.warmup_ratio + (1 - self.warmup_ratio) * step / self.warmup_iters
        return lr


def build_scheduler(lr: float, lr_steps: Sequence[int], lr_gamma: float, iters_per_epoch: int,
                    warmup_iters: int = 0, warmup_ratio: float = 0.001) -> WarmupMultiStepDecay:
    """Multiply the lr by lr_gamma once each epoch of lr_steps is over (the schedule is kept in
    iterations, so a run resumed mid-epoch and a warm-up of a few hundred iterations both work)."""
    if list(lr_steps) != sorted(lr_steps):
        raise BadValue(f'--lr_steps must be increasing epochs; received {list(lr_steps)}.')
    return WarmupMultiStepDecay(lr, [epoch * iters_per_epoch for epoch in lr_steps], lr_gamma,
                                warmup_iters, warmup_ratio)


# Flags under which Paddle's Adam kernel no longer computes the update TorchRMSProp relies on. Paddle's development
# branch (phi/kernels/gpu/adam_kernel.cu after PR #78972, May 2026) sends every Adam step to
# AdamDenseKernel_compatible when FLAGS_use_accuracy_compatible_kernel is set; that kernel derives the step count
# from round(log(beta1_pow) / log(beta1)), which is NaN for beta1 = 0 and beta1_pow = 0, and every weight becomes
# NaN at the first step. The flag exists (off by default) from Paddle 3.2.2 (paddle/common/flags.cc); 3.3.1's own
# kernels do not read it for Adam, Paddle 2.6 does not have it.
INCOMPATIBLE_FLAGS = ('FLAGS_use_accuracy_compatible_kernel',)


def _flags_set(names) -> list:
    registry = paddle.base.core.globals()
    return [name for name in names if registry.is_public(name) and registry[name]]


class TorchRMSProp(paddle.optimizer.Adam):
    """RMSprop as Torch7 and PyTorch compute it, the update of the paper (Newell et al. 2016):

        r <- alpha * r + (1 - alpha) * g^2;    w <- w - lr * g / (sqrt(r) + eps)

    Paddle's own RMSProp puts eps inside the root, w <- w - lr * g / sqrt(r + eps); with eps 1e-8 that step is
    0.32x the paper's at |g| = 1e-4 and 0.04x at 1e-5, where most hourglass gradients lie (SPEC I).

    Adam's fused kernel computes exactly this update when beta1 = 0 (the first moment is the gradient) and its
    running products beta1^t and beta2^t are held at 0, which turns both bias corrections into 1: Adam's step
    lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps) (phi/kernels/gpu/adam_kernel.cu AdamKernelREG/MEM;
    the CPU kernel folds the same corrections into lr and eps) becomes lr * g / (sqrt(v) + eps): one kernel per
    parameter, with multi-precision master weights. Weight decay is L2 added to the gradient, as PyTorch's.

    Why this construction and not an update written with elementwise ops: that would be six kernels per parameter
    instead of one (8,800 more launches per step for the 8-stack hourglass). The price is that it leans on the
    kernel's treatment of private accumulators, so it is guarded where that can change:
    - the powers are zeroed *on the CPU place*, where Adam itself creates them (python/paddle/optimizer/adam.py
      _add_moments_pows, device='cpu'; 2.6 and 3.x). Tensor.set_value(ndarray) would re-create them on the expected
      place (base/dygraph/tensor_patch_methods.py: get_tensor().set(value, _current_expected_place())), i.e. the
      GPU, and the GPU kernel then takes its AdamKernelMEM branch plus one UpdateBetaPow<<<1, 1>>> launch per
      parameter per step instead of AdamKernelREG with the powers passed by value;
    - a flag of INCOMPATIBLE_FLAGS that is set is refused (BadValue), at construction and at each step;
    - the first step on each place checks the kernel's update against the formula in float64 (check_update_formula):
      a Paddle whose kernel computes something else is refused before it touches the model.
    """

    def __init__(self, learning_rate, alpha: float = 0.99, epsilon: float = 1e-8, parameters=None,
                 weight_decay=None, multi_precision: bool = False):
        refuse_incompatible_flags()
        super().__init__(learning_rate=learning_rate, beta1=0.0, beta2=alpha, epsilon=epsilon,
                         parameters=parameters, weight_decay=weight_decay, multi_precision=multi_precision)

    def _add_moments_pows(self, p):
        super()._add_moments_pows(p)
        for name in (self._beta1_pow_acc_str, self._beta2_pow_acc_str):   # both stay 0 (0 x beta = 0)
            accumulator = self._accumulators[name][p.name]
            # Paddle's own call for accumulators on the CPU (optimizer.py _add_accumulator, 2.6 and 3.x).
            paddle._C_ops.full_(accumulator, accumulator.shape, '0.0', accumulator.dtype, paddle.CPUPlace())

    def step(self):
        refuse_incompatible_flags()
        if paddle.in_dynamic_mode():
            check_update_formula(paddle.get_device())
        return super().step()


def refuse_incompatible_flags() -> None:
    bad = _flags_set(INCOMPATIBLE_FLAGS)
    if bad:
        raise BadValue(f'{", ".join(bad)} is set (Paddle {paddle.__version__}): under it Paddle\'s Adam kernel derives '
                       'the step count from log(beta1_pow) / log(beta1), which the paper\'s RMSprop (TorchRMSProp: '
                       'Adam with beta1 = 0) turns into NaN weights. Fix: unset it (paddle.set_flags({"' + bad[0] +
                       '": False}) or the environment variable), or train with --optimizer adam.')


_FORMULA_CHECKED = set()


def check_update_formula(device: str) -> None:
    """Once per device: two TorchRMSProp steps on a small parameter against r <- a r + (1 - a) g^2,
    w <- w - lr g / (sqrt(r) + eps) in float64 (gradients 1e-2 ... 1e-8); BadValue naming the Paddle version when
    the kernel computes anything else (relative error above 1e-4, float32 rounding is ~1e-7)."""
    if device in _FORMULA_CHECKED:
        return
    _FORMULA_CHECKED.add(device)      # first, so that the check's own optimizer does not check again
    try:
        worst = rmsprop_formula_error()
    except BaseException:
        _FORMULA_CHECKED.discard(device)
        raise
    if not worst < 1e-4:
        _FORMULA_CHECKED.discard(device)
        raise BadValue(f'Paddle {paddle.__version__} on {device}: TorchRMSProp (Adam with beta1 = 0) no longer computes '
                       f'the paper\'s RMSprop update (relative error {worst:.3g} after two steps; expected < 1e-4). '
                       'Fix: use --optimizer adam, or a Paddle version this repository is tested with (2.6, 3.3), '
                       'and report the version.')


def rmsprop_formula_error(scales=(1e-2, 1e-4, 1e-6, 1e-8), steps: int = 2, lr: float = 1e-3, alpha: float = 0.99,
                          eps: float = 1e-8) -> float:
    """Largest relative difference between TorchRMSProp's parameter after `steps` steps and the formula in float64,
    over a parameter whose entries see gradients of the given scales."""
    grads = np.array([[s * (1 + 0.5 * k) * (-1) ** k for s in scales for k in range(2)] for _ in range(steps)])
    grads[1:] *= 0.5
    w = paddle.create_parameter([grads.shape[1]], 'float32', default_initializer=paddle.nn.initializer.Constant(0.0))
    optimizer = TorchRMSProp(lr, alpha=alpha, epsilon=eps, parameters=[w])
    r, expected = np.zeros(grads.shape[1]), np.zeros(grads.shape[1])
    for g in grads:
        (w * paddle.to_tensor(g.astype('float32'))).sum().backward()
        optimizer.step()
        optimizer.clear_grad()
        g32 = g.astype('float32').astype(np.float64)
        r = alpha * r + (1 - alpha) * g32 ** 2
        expected = expected - lr * g32 / (np.sqrt(r) + eps)
    return float(np.max(np.abs(w.numpy().astype(np.float64) - expected) / np.abs(expected)))


OPTIMIZERS = ('rmsprop', 'adam')


def build_optimizer(name: str, scheduler, parameters, weight_decay: float = 0.0) -> paddle.optimizer.Optimizer:
    """'rmsprop' as the paper and Newell's Torch code (TorchRMSProp: alpha 0.99, eps 1e-8 outside the root, no
    momentum), or 'adam' (HRNet / princeton-vl / MMPose, betas 0.9/0.999, eps 1e-8; Paddle's Adam places eps as
    PyTorch's does). weight_decay is L2 added to the gradient in both, as in PyTorch."""
    decay = weight_decay or None
    if name == 'rmsprop':
        return TorchRMSProp(learning_rate=scheduler, alpha=0.99, epsilon=1e-8, parameters=parameters,
                            weight_decay=decay)
    if name == 'adam':
        return paddle.optimizer.Adam(learning_rate=scheduler, beta1=0.9, beta2=0.999, epsilon=1e-8,
                                     parameters=parameters, weight_decay=decay)
    raise BadValue(f"--optimizer must be one of {OPTIMIZERS}; received {name!r}.")
