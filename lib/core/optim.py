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


class TorchRMSProp(paddle.optimizer.Adam):
    """RMSprop as Torch7 and PyTorch compute it, the update of the paper (Newell et al. 2016):

        r <- alpha * r + (1 - alpha) * g^2;    w <- w - lr * g / (sqrt(r) + eps)

    Paddle's own RMSProp puts eps inside the root, w <- w - lr * g / sqrt(r + eps); with eps 1e-8 that step is
    0.32x the paper's at |g| = 1e-4 and 0.04x at 1e-5, where most hourglass gradients lie (SPEC I).

    Adam's fused kernel computes exactly this update when beta1 = 0 (the first moment is the gradient) and its
    running product beta2^t is held at 0, which turns both bias corrections into 1:
    Adam's step lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps * sqrt(1 - beta2^t)) becomes
    lr * g / (sqrt(v) + eps). So this is one kernel per parameter, as fast as Paddle's RMSProp, on every device
    and with multi-precision master weights. Weight decay is L2 added to the gradient, as PyTorch's.
    """

    def __init__(self, learning_rate, alpha: float = 0.99, epsilon: float = 1e-8, parameters=None,
                 weight_decay=None, multi_precision: bool = False):
        super().__init__(learning_rate=learning_rate, beta1=0.0, beta2=alpha, epsilon=epsilon,
                         parameters=parameters, weight_decay=weight_decay, multi_precision=multi_precision)

    def _add_moments_pows(self, p):
        super()._add_moments_pows(p)
        for name in (self._beta1_pow_acc_str, self._beta2_pow_acc_str):   # both stay 0 (0 x beta = 0)
            accumulator = self._accumulators[name][p.name]
            accumulator.set_value(np.zeros(accumulator.shape, dtype=accumulator.numpy().dtype))


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
