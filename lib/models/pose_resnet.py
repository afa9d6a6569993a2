"""SimpleBaselines `pose_resnet` (Xiao, Wu, Wei, "Simple Baselines for Human Pose Estimation and
Tracking", ECCV 2018) as HRNet's lib/models/pose_resnet.py (SPEC F.3): a torchvision ResNet without
avgpool/fc, three stride-2 transposed convolutions and a 1x1 heatmap layer.

Sub-layer names follow torchvision and HRNet (conv1, bn1, layer1..4 with conv1/bn1/.../downsample.0/.1,
deconv_layers.0..8, final_layer), so ImageNet and HRNet checkpoints map by name: only the BatchNorm
statistics are spelled differently in Paddle (running_mean/running_var -> _mean/_variance), and the
ImageNet fc.* and the PyTorch num_batches_tracked entries have no counterpart here.

BasicBlock, the projection shortcut and the Normal(0, 0.001) convolution live in layers.py: MMPose's
HourglassNet is built from them too.
"""
from typing import List, Optional, Sequence, Tuple, Type, Union

import paddle
import paddle.nn as nn
from paddle import ParamAttr
from paddle.nn.initializer import Normal

from lib.models.layers import INIT_STD, BasicBlock, batch_norm, check_input_divisible, downsample, normal_conv
from lib.utils.errors import BadValue

# Transposed-conv kernel -> (padding, output_padding) giving exactly x2 at stride 2 (HRNet _get_deconv_cfg).
DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


# ---------------------------------------------------------------------------------------------- helpers
def deconv_padding(kernel_size: int) -> Tuple[int, int]:
    """(padding, output_padding) of a stride-2 transposed conv that doubles the resolution."""
    if kernel_size not in DECONV_PADDING:
        raise BadValue(f'deconv kernel size {kernel_size} is not supported; expected one of '
                       f'{sorted(DECONV_PADDING)} (they give an exact x2 upsampling at stride 2). '
                       f'Fix: set deconv_kernels to values from {sorted(DECONV_PADDING)}, e.g. (4, 4, 4).')
    return DECONV_PADDING[kernel_size]


# ----------------------------------------------------------------------------------------------- blocks
class Bottleneck(nn.Layer):
    """ResNet v1.5 bottleneck (torchvision): 1x1 -> 3x3 (stride) -> 1x1 (x4 channels), + shortcut, ReLU."""
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Layer] = None):
        super().__init__()
        self.conv1 = normal_conv(in_channels, planes, 1)
        self.bn1 = batch_norm(planes)
        self.conv2 = normal_conv(planes, planes, 3, stride)
        self.bn2 = batch_norm(planes)
        self.conv3 = normal_conv(planes, planes * self.expansion, 1)
        self.bn3 = batch_norm(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]


# ---------------------------------------------------------------------------------------------- network
class PoseResNet(nn.Layer):
    """ResNet backbone (1/32) + deconv head (x8) + 1x1 heatmap layer.

    forward(images [N, 3, H, W]) -> [heatmaps [N, K, H/4, W/4]] (one output; H and W multiples of 32).
    """

    def __init__(self, block: Block, layers: Sequence[int], num_joints: int = 16,
                 deconv_filters: Sequence[int] = (256, 256, 256), deconv_kernels: Sequence[int] = (4, 4, 4)):
        super().__init__()
        if len(deconv_filters) != 3 or len(deconv_kernels) != 3:
            # Three x2 deconvs take the backbone's 1/32 to the contract's 1/4.
            raise BadValue(f'pose_resnet needs 3 deconv layers to reach H/4; received deconv_filters='
                           f'{tuple(deconv_filters)}, deconv_kernels={tuple(deconv_kernels)}. Fix: pass 3 '
                           f'entries each, e.g. (256, 256, 256) and (4, 4, 4).')
        for kernel in deconv_kernels:
            deconv_padding(kernel)   # fail before building the backbone
        self.conv1 = nn.Conv2D(3, 64, 7, stride=2, padding=3, bias_attr=False,
                               weight_attr=ParamAttr(initializer=Normal(0.0, INIT_STD)))
        self.bn1 = batch_norm(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.in_channels = 64
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.deconv_layers = self._make_deconv_layers(deconv_filters, deconv_kernels)
        self.final_layer = normal_conv(deconv_filters[-1], num_joints, 1, bias=True)

    def _make_layer(self, block: Block, planes: int, num_blocks: int, stride: int = 1) -> nn.Sequential:
        out_channels = planes * block.expansion
        layers = [block(self.in_channels, planes, stride, downsample(self.in_channels, out_channels, stride))]
        self.in_channels = out_channels
        layers += [block(out_channels, planes) for _ in range(1, num_blocks)]
        return nn.Sequential(*layers)

    def _make_deconv_layers(self, filters: Sequence[int], kernels: Sequence[int]) -> nn.Sequential:
        layers = []
        for out_channels, kernel in zip(filters, kernels):
            padding, output_padding = deconv_padding(kernel)
            layers += [nn.Conv2DTranspose(self.in_channels, out_channels, kernel, stride=2, padding=padding,
                                          output_padding=output_padding, bias_attr=False,
                                          weight_attr=ParamAttr(initializer=Normal(0.0, INIT_STD))),
                       batch_norm(out_channels),
                       nn.ReLU()]
            self.in_channels = out_channels
        return nn.Sequential(*layers)

    def forward(self, images: paddle.Tensor) -> List[paddle.Tensor]:
        check_input_divisible(images, 32, 'pose_resnet')
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))          # [N, 64, H/4, W/4]
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))          # [N, C, H/32, W/32]
        x = self.deconv_layers(x)                                          # [N, 256, H/4, W/4]
        return [self.final_layer(x)]                                       # [[N, K, H/4, W/4]]


# --------------------------------------------------------------------------------------------- builders
# depth -> (bottleneck blocks?, blocks per stage), as torchvision's resnet{18..152}; the converters read it too.
RESNETS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3)),
           101: (True, (3, 4, 23, 3)), 152: (True, (3, 8, 36, 3))}


def _pose_resnet(depth: int, num_joints: int, **kwargs) -> PoseResNet:
    bottleneck, blocks = RESNETS[depth]
    return PoseResNet(Bottleneck if bottleneck else BasicBlock, blocks, num_joints, **kwargs)


def pose_resnet_18(num_joints: int = 16, **kwargs) -> PoseResNet:
    """SimpleBaselines on ResNet-18. kwargs: deconv_filters, deconv_kernels."""
    return _pose_resnet(18, num_joints, **kwargs)


def pose_resnet_34(num_joints: int = 16, **kwargs) -> PoseResNet:
    """SimpleBaselines on ResNet-34. kwargs: deconv_filters, deconv_kernels."""
    return _pose_resnet(34, num_joints, **kwargs)


def pose_resnet_50(num_joints: int = 16, **kwargs) -> PoseResNet:
    """SimpleBaselines on ResNet-50 (34.0M parameters with 16 joints). kwargs: deconv_filters, deconv_kernels."""
    return _pose_resnet(50, num_joints, **kwargs)


def pose_resnet_101(num_joints: int = 16, **kwargs) -> PoseResNet:
    """SimpleBaselines on ResNet-101 (53.0M parameters). kwargs: deconv_filters, deconv_kernels."""
    return _pose_resnet(101, num_joints, **kwargs)


def pose_resnet_152(num_joints: int = 16, **kwargs) -> PoseResNet:
    """SimpleBaselines on ResNet-152 (68.6M parameters). kwargs: deconv_filters, deconv_kernels."""
    return _pose_resnet(152, num_joints, **kwargs)
