"""Stacked Hourglass Networks (Newell, Yang, Deng, ECCV 2016), as princeton-vl/pytorch_stacked_hourglass.

Differences from that PyTorch port, on purpose (SPEC F.1, decision 5): NCHW input, and Residual
creates its 1x1 skip convolution only when the channel count changes (the port registers one it
never uses), so 8 stacks have 25,434,112 parameters, like Newell's Torch original.
"""
from typing import List

import paddle
import paddle.nn as nn

from lib.models.layers import batch_norm, conv2d, upsample_nearest_2x
from lib.utils.errors import BadValue


class ConvBNReLU(nn.Layer):
    """Convolution (with bias) followed by optional BatchNorm and ReLU: princeton-vl's `Conv`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 bn: bool = False, relu: bool = True):
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride)
        self.bn = batch_norm(out_channels) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Residual(nn.Layer):
    """Pre-activation bottleneck: BN-ReLU-1x1 -> BN-ReLU-3x3 -> BN-ReLU-1x1, plus the input.

    No ReLU after the addition. The skip is the identity unless the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.bn1 = batch_norm(in_channels)
        self.conv1 = conv2d(in_channels, mid, 1)
        self.bn2 = batch_norm(mid)
        self.conv2 = conv2d(mid, mid, 3)
        self.bn3 = batch_norm(mid)
        self.conv3 = conv2d(mid, out_channels, 1)
        self.relu = nn.ReLU()
        self.skip = conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x):
        residual = x if self.skip is None else self.skip(x)
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + residual


class Hourglass(nn.Layer):
    """Recursive hourglass of `depth` levels: each level halves the resolution with a 2x2 max-pool."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.up1 = Residual(channels, channels)
        self.pool = nn.MaxPool2D(2, 2)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)

    def forward(self, x):
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(self.pool(x))))
        return up1 + upsample_nearest_2x(low)


class StackedHourglass(nn.Layer):
    """`num_stacks` hourglasses with intermediate supervision.

    forward(images [N, 3, H, W]) -> list of num_stacks heatmaps [N, K, H/4, W/4]; the last is the prediction.
    """

    def __init__(self, num_stacks: int = 8, num_features: int = 256, num_joints: int = 16, depth: int = 4):
        super().__init__()
        if num_features % 2 or num_features < 8:
            raise BadValue(f'num_features must be an even number >= 8 (bottleneck width is half of it); '
                           f'received {num_features}. The paper uses 256.')
        self.num_stacks = num_stacks
        self.depth = depth
        half = num_features // 2
        self.stem = nn.Sequential(
            ConvBNReLU(3, 64, 7, 2, bn=True, relu=True),   # [N, 64, H/2, W/2]
            Residual(64, half),
            nn.MaxPool2D(2, 2),                             # [N, 128, H/4, W/4]
            Residual(half, half),
            Residual(half, num_features),
        )
        self.hourglasses = nn.LayerList([Hourglass(depth, num_features) for _ in range(num_stacks)])
        self.features = nn.LayerList([
            nn.Sequential(Residual(num_features, num_features),
                          ConvBNReLU(num_features, num_features, 1, bn=True, relu=True))
            for _ in range(num_stacks)])
        self.heads = nn.LayerList([ConvBNReLU(num_features, num_joints, 1, relu=False) for _ in range(num_stacks)])
        self.merge_features = nn.LayerList([ConvBNReLU(num_features, num_features, 1, relu=False)
                                            for _ in range(num_stacks - 1)])
        self.merge_preds = nn.LayerList([ConvBNReLU(num_joints, num_features, 1, relu=False)
                                         for _ in range(num_stacks - 1)])

    def forward(self, images: paddle.Tensor) -> List[paddle.Tensor]:
        x = self.stem(images)
        heatmaps = []
        for i in range(self.num_stacks):
            feature = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](feature)                                  # [N, K, h, w]
            heatmaps.append(pred)
            if i < self.num_stacks - 1:
                x = x + self.merge_preds[i](pred) + self.merge_features[i](feature)
        return heatmaps


def stacked_hourglass(num_joints: int = 16, num_stacks: int = 8, num_features: int = 256) -> StackedHourglass:
    """Newell et al.'s stacked hourglass; 8 stacks of 256 features as in the paper."""
    return StackedHourglass(num_stacks=num_stacks, num_features=num_features, num_joints=num_joints)
