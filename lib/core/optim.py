"""Optimizer and learning-rate schedule (SPEC G, I)."""
from typing import Sequence

import paddle


def build_scheduler(lr: float, lr_steps: Sequence[int], lr_gamma: float) -> paddle.optimizer.lr.LRScheduler:
    """Multiply the lr by lr_gamma at each epoch in lr_steps; stepped once after every epoch."""
    if list(lr_steps) != sorted(lr_steps):
        raise ValueError(f'--lr_steps must be increasing epochs; received {list(lr_steps)}.')
    return paddle.optimizer.lr.MultiStepDecay(learning_rate=lr, milestones=list(lr_steps), gamma=lr_gamma)


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
