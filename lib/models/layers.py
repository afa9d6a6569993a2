"""Building blocks shared by the models, written once."""
import math

import paddle
import paddle.nn as nn
from paddle import ParamAttr
from paddle.nn.initializer import Uniform

# Paddle's BatchNorm momentum is the weight of the *old* statistics: Paddle 0.9 == PyTorch 0.1.
BN_MOMENTUM = 0.9


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


def batch_norm(channels: int) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(channels, momentum=BN_MOMENTUM, epsilon=1e-5)


def upsample_nearest_2x(x: paddle.Tensor) -> paddle.Tensor:
    """Nearest-neighbour x2 upsampling of [N, C, H, W] by repeat and reshape.

    Same values as F.interpolate(scale_factor=2, mode='nearest'), but built from ops that every
    backend exports (Paddle 3.3's scale-factor interpolate breaks oneDNN and paddle2onnx).
    """
    x = x.unsqueeze(3).unsqueeze(5)                 # [N, C, H, 1, W, 1]
    x = paddle.expand(x, [-1, -1, -1, 2, -1, 2])     # [N, C, H, 2, W, 2]
    return x.flatten(2, 3).flatten(3, 4)            # [N, C, 2H, 2W]
