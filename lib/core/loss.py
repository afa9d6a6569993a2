"""Heatmap losses: HRNet's JointsMSELoss, summed over stacks for intermediate supervision (SPEC E)."""
from typing import List

import paddle
import paddle.nn as nn


class JointsMSELoss(nn.Layer):
    """0.5 x mean over (N, K, h, w) of (w_nk * (pred - target))^2, as HRNet's JointsMSELoss.

    pred, target: [N, K, h, w]; target_weight: [N, K, 1] (0 drops a joint).
    """

    def __init__(self, use_target_weight: bool = True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, pred: paddle.Tensor, target: paddle.Tensor, target_weight: paddle.Tensor) -> paddle.Tensor:
        if pred.dtype in (paddle.float16, paddle.bfloat16):    # mixed precision: the loss in float32
            pred = pred.astype('float32')
        diff = pred - target.astype(pred.dtype)
        if self.use_target_weight:
            diff = diff * target_weight.unsqueeze(-1)           # [N, K, 1, 1] broadcast over pixels
        return 0.5 * paddle.mean(diff * diff)


class StackedHeatmapLoss(nn.Layer):
    """Intermediate supervision: the same target for every output; `reduction` 'sum' (HRNet's trainer,
    Newell's Torch code) or 'mean' (princeton-vl) over the stacks."""

    def __init__(self, reduction: str = 'sum', use_target_weight: bool = True):
        super().__init__()
        if reduction not in ('sum', 'mean'):
            raise ValueError(f"stack loss reduction must be 'sum' or 'mean'; received {reduction!r}.")
        self.reduction = reduction
        self.criterion = JointsMSELoss(use_target_weight)

    def forward(self, outputs: List[paddle.Tensor], target: paddle.Tensor,
                target_weight: paddle.Tensor) -> paddle.Tensor:
        total = paddle.add_n([self.criterion(out, target, target_weight) for out in outputs])
        return total / len(outputs) if self.reduction == 'mean' else total
