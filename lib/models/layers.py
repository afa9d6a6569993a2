"""Building blocks shared by the models, written once."""
import math
from typing import Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import ParamAttr
from paddle.nn.initializer import Constant, Normal, Uniform
from lib.utils.errors import BadValue

# Paddle's BatchNorm momentum is the weight of the *old* statistics: Paddle 0.9 == PyTorch 0.1.
BN_MOMENTUM = 0.9

# HRNet's init_weights without a pretrained file, and MMPose's init_cfg: every conv Normal(0, 0.001).
INIT_STD = 0.001


def torch_default_init(fan_in: int) -> ParamAttr:
    """PyTorch's default Conv2d init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
    (kaiming_uniform with a=sqrt(5)). Paddle's default is a different normal, so references that
    rely on PyTorch's defaults (princeton-vl's hourglass) get this explicitly."""
    bound = 1.0 / math.sqrt(fan_in)
    return ParamAttr(initializer=Uniform(-bound, bound))


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2D:
    """k x k convolution with 'same' padding and bias, initialised as PyTorch's default."""
    fan_in = in_channels * kernel_size * kernel_size
    return nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                     weight_attr=torch_default_init(fan_in), bias_attr=torch_default_init(fan_in))


class BatchNorm2D(nn.BatchNorm2D):
    """Paddle's BatchNorm2D whose running variance is updated as PyTorch's and Torch7's are.

    In training both normalise with the biased batch variance b, but the running statistic differs:
    Paddle keeps v <- m v + (1 - m) b, the references v <- m v + (1 - m) b n / (n - 1), with n = N h w
    values per channel. At the hourglass's 4x4 (or hourglass52's 2x2) level and batch 16 that is 1-2 %
    of the variance used at test time. The correction follows Paddle's update; inference (eval mode, export)
    runs Paddle's layer unchanged.
    """

    COUNTED_AS = nn.BatchNorm2D     # for lib/utils/complexity.py: the same operations as Paddle's layer

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        if not self.training or self._use_global_stats or n <= 1:
            return nn.BatchNorm2D.forward(self, x)     # not super(): Paddle 2.6's to_static cannot transform it
        # Paddle's kernel updates a copy of the running variance, v' = m v + (1 - m) b; the references keep
        # m v + (1 - m) b n/(n-1) = v' n/(n-1) - m v / (n-1). The copy matters: the backward pass holds the
        # variance it was given and refuses one changed afterwards, so the layer's own is written only here.
        working = self._variance.clone()
        y = F.batch_norm(x, self._mean, working, weight=self.weight, bias=self.bias, training=True,
                         momentum=self._momentum, epsilon=self._epsilon, data_format=self._data_format)
        paddle.assign(working.detach() * (n / (n - 1)) - self._variance.detach() * (self._momentum / (n - 1)),
                      output=self._variance)
        return y


def batch_norm(channels: int) -> nn.BatchNorm2D:
    return BatchNorm2D(channels, momentum=BN_MOMENTUM, epsilon=1e-5)


def upsample_nearest_2x(x: paddle.Tensor) -> paddle.Tensor:
    """Nearest-neighbour x2 upsampling of [N, C, H, W] by repeat and reshape.

    Same values as F.interpolate(scale_factor=2, mode='nearest'), but built from ops that every
    backend exports (Paddle 3.3's scale-factor interpolate breaks oneDNN and paddle2onnx).
    """
    x = x.unsqueeze(3).unsqueeze(5)                 # [N, C, H, 1, W, 1]
    x = paddle.expand(x, [-1, -1, -1, 2, -1, 2])     # [N, C, H, 2, W, 2]
    return x.flatten(2, 3).flatten(3, 4)            # [N, C, 2H, 2W]


def normal_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                bias: bool = False) -> nn.Conv2D:
    """k x k convolution with 'same' padding, weight Normal(0, 0.001), bias (if any) 0."""
    return nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                     weight_attr=ParamAttr(initializer=Normal(0.0, INIT_STD)),
                     bias_attr=ParamAttr(initializer=Constant(0.0)) if bias else False)


def downsample(in_channels: int, out_channels: int, stride: int) -> Optional[nn.Sequential]:
    """Projection shortcut 1x1 conv (stride) + BN, or None when the identity fits (torchvision rule)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(normal_conv(in_channels, out_channels, 1, stride), batch_norm(out_channels))


def check_input_divisible(images: paddle.Tensor, divisor: int, model: str) -> None:
    """Raise unless the image height and width are multiples of `divisor` (else heatmaps are not H/4 x W/4).

    Dimensions unknown at trace time (-1 under paddle.jit.to_static) are not checked.
    """
    height, width = images.shape[-2], images.shape[-1]
    bad = [side for side in (height, width) if isinstance(side, int) and side > 0 and side % divisor]
    if bad:
        w_fix, h_fix = (max(divisor, round(side / divisor) * divisor) for side in (width, height))
        raise BadValue(f'{model} needs an input whose height and width are divisible by {divisor}; received '
                       f'W x H = {width} x {height}. Fix: use an image size that is a multiple of {divisor}, '
                       f'e.g. {w_fix} x {h_fix}.')


class BasicBlock(nn.Layer):
    """ResNet basic block (post-activation): 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN, + shortcut, ReLU."""
    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Layer] = None):
        super().__init__()
        self.conv1 = normal_conv(in_channels, planes, 3, stride)
        self.bn1 = batch_norm(planes)
        self.conv2 = normal_conv(planes, planes, 3)
        self.bn2 = batch_norm(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
