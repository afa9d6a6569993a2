"""Building blocks shared by the models, written once."""
import math
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np
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


# ----------------------------------------------------------------------------------------- BatchNorm
#
# Which running variance a batch_norm kernel keeps depends on the kernel that runs, not on Paddle's API:
# - Paddle's CPU kernel (phi/kernels/cpu/batch_norm_kernel.cc) keeps the biased batch variance b;
# - on CUDA, phi/kernels/gpu/batch_norm_kernel.cu (2.6 and 3.x, read at commit 01fbd77c) sends every 4-D
#   training input to cudnnBatchNormalizationForwardTraining(Ex), which writes the running variance itself
#   with the unbiased b n/(n-1) (the cuDNN convention PyTorch relies on); only 2-D/3-D inputs above a size
#   threshold use Paddle's own BNForwardTraining* kernels (variance_val = x_square_sum/inner_size - mean^2,
#   biased), as does ROCm unless FLAGS_batch_norm_use_miopen; FLAGS_cudnn_batchnorm_spatial_persistent
#   switches cuDNN's mode (and, for float16 NHWC, the compute layout); H = W = 1 selects cuDNN's per-activation
#   mode; SyncBatchNorm's kernel is biased (not used here).
# So the correction to PyTorch's convention is decided by a probe of the kernel that actually runs, once per
# (place, input dtype and mixed-precision state, i.e. the dtype the kernel sees, data layout, spatial or
# per-activation mode, and the flags above), and applied only where that kernel is biased.

PROBE_FLAGS = ('FLAGS_cudnn_batchnorm_spatial_persistent', 'FLAGS_batch_norm_use_miopen')


def _public_flags(names) -> tuple:
    """The values of those flags this Paddle build has (CPU builds have neither of PROBE_FLAGS)."""
    registry = paddle.base.core.globals()
    return tuple((name, registry[name]) for name in names if registry.is_public(name))


def _amp_state() -> tuple:
    """The eager autocast state (level, dtype) that decides what dtype batch_norm's input is cast to."""
    tracer = paddle.base.framework._dygraph_tracer()
    if tracer is None:
        return ('static graph',)
    return (str(getattr(tracer, '_amp_level', '')), str(getattr(tracer, '_amp_dtype', '')))


class ProbeResult(NamedTuple):
    biased: bool            # the kernel keeps the biased batch variance: the layer corrects it
    running_variance: float  # what the kernel wrote for the input [0, 2]: 1 biased, 2 unbiased
    kernel_dtype: str        # the dtype the kernel computed in (after autocast)


def probe_running_variance(dtype: str, data_format: str, spatial: bool) -> ProbeResult:
    """Run batch_norm in training mode, momentum 0 (so the running variance becomes the batch statistic), on the
    two values [0, 2] (biased variance 1, unbiased 2) laid out as [N, C, H, W] = [1, 1, 1, 2] (spatial: the
    cuDNN mode of every layer with H w > 1) or [2, 1, 1, 1] (per-activation), in `dtype` under the current
    autocast state, and read back which one the kernel kept. Its own tensors: no layer's statistics change."""
    shape = ([1, 1, 1, 2] if data_format == 'NCHW' else [1, 1, 2, 1]) if spatial else [2, 1, 1, 1]
    with paddle.no_grad():
        x = paddle.to_tensor(np.array([0.0, 2.0], dtype=np.float32).reshape(shape)).astype(dtype)
        mean, variance = paddle.zeros([1], dtype='float32'), paddle.ones([1], dtype='float32')
        y = F.batch_norm(x, mean, variance, training=True, momentum=0.0, epsilon=1e-5, data_format=data_format)
        value = float(variance.numpy().reshape(-1)[0])
    if abs(value - 1.0) > 1e-2 and abs(value - 2.0) > 1e-2:
        raise RuntimeError(f'batch_norm probe: the running variance of [0, 2] came out {value}, neither the biased 1 '
                           f'nor the unbiased 2 (Paddle {paddle.__version__}, {dtype}, {data_format}); please report.')
    return ProbeResult(abs(value - 1.0) <= 1e-2, value, str(y.dtype).replace('paddle.', ''))


class RunningVarianceProbe:
    """The probe's decisions, cached per kernel key; `run` is injectable (a test substitutes a fake kernel)."""

    def __init__(self, run: Callable[[str, str, bool], ProbeResult] = probe_running_variance):
        self.run = run
        self.decisions: Dict[tuple, ProbeResult] = {}

    def key(self, x: paddle.Tensor, data_format: str, spatial: bool) -> tuple:
        place = str(x.place) if paddle.in_dynamic_mode() else f'static graph on {paddle.get_device()}'
        return (place, str(x.dtype), _amp_state(), data_format, spatial, _public_flags(PROBE_FLAGS))

    def biased(self, x: paddle.Tensor, data_format: str, spatial: bool) -> bool:
        key = self.key(x, data_format, spatial)
        if key not in self.decisions:
            self.decisions[key] = self._decide(str(x.dtype).replace('paddle.', ''), data_format, spatial)
        return self.decisions[key].biased

    @paddle.jit.not_to_static
    def _decide(self, dtype: str, data_format: str, spatial: bool) -> ProbeResult:
        if paddle.in_dynamic_mode():
            return self.run(dtype, data_format, spatial)
        with paddle.base.dygraph.guard():     # tracing a static graph (to_static): the probe itself runs eagerly
            return self.run(dtype, data_format, spatial)


VARIANCE_PROBE = RunningVarianceProbe()


class BatchNorm2D(nn.BatchNorm2D):
    """Paddle's BatchNorm2D whose running variance is updated as PyTorch's and Torch7's are.

    In training both normalise with the biased batch variance b, but the running statistic the references keep is
    v <- m v + (1 - m) b n / (n - 1), with n = N h w values per channel. Paddle's CPU kernel keeps m v + (1 - m) b
    (1-2 % lower at the hourglass's 4x4 level, or hourglass52's 2x2, with batch 16); cuDNN already keeps the
    unbiased one. VARIANCE_PROBE decides which kernel this is (see above), and only a biased kernel's update is
    corrected. Inference (eval mode, export) runs Paddle's layer unchanged.
    """

    COUNTED_AS = nn.BatchNorm2D     # for lib/utils/complexity.py: the same operations as Paddle's layer

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        h, w = (x.shape[2], x.shape[3]) if self._data_format == 'NCHW' else (x.shape[1], x.shape[2])
        n = x.shape[0] * h * w
        if not self.training or self._use_global_stats or n <= 1:
            return nn.BatchNorm2D.forward(self, x)     # not super(): Paddle 2.6's to_static cannot transform it
        if not VARIANCE_PROBE.biased(x, self._data_format, spatial=h * w > 1):
            return F.batch_norm(x, self._mean, self._variance, weight=self.weight, bias=self.bias, training=True,
                                momentum=self._momentum, epsilon=self._epsilon, data_format=self._data_format)
        # The biased kernel updates a copy of the running variance, v' = m v + (1 - m) b; the references keep
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
