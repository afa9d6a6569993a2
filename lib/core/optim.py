"""Optimizer and learning-rate schedule (SPEC G, I)."""
from bisect import bisect_right
from typing import Sequence

import paddle


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
        raise ValueError(f'--lr_steps must be increasing epochs; received {list(lr_steps)}.')
    return WarmupMultiStepDecay(lr, [epoch * iters_per_epoch for epoch in lr_steps], lr_gamma,
                                warmup_iters, warmup_ratio)


def build_optimizer(name: str, scheduler, parameters, weight_decay: float = 0.0) -> paddle.optimizer.Optimizer:
    """'rmsprop' as the paper and Newell's Torch code (alpha 0.99, eps 1e-8, no momentum; Paddle puts
    eps inside the square root, Torch outside: negligible once gradients are non-zero), or 'adam'
    (HRNet / princeton-vl / MMPose, betas 0.9/0.999, eps 1e-8)."""
    decay = weight_decay or None
    if name == 'rmsprop':
        return paddle.optimizer.RMSProp(learning_rate=scheduler, rho=0.99, epsilon=1e-8, momentum=0.0,
                                        parameters=parameters, weight_decay=decay)
    if name == 'adam':
        return paddle.optimizer.Adam(learning_rate=scheduler, beta1=0.9, beta2=0.999, epsilon=1e-8,
                                     parameters=parameters, weight_decay=decay)
    raise ValueError(f"--optimizer must be 'rmsprop' or 'adam'; received {name!r}.")
