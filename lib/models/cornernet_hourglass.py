"""MMPose's HourglassNet (the CornerNet hourglass: Law & Deng, ECCV 2018) with a CPMHead-like 1x1 heatmap
head per stack, as MMPose's td-hm_hourglass52 config (SPEC F.2). Hourglass-52 = 1 stack, Hourglass-104 = 2.

Sub-layer names follow MMPose's backbone (stem, hourglass_modules.i.{up1, low1, low2, low3}, out_convs,
conv1x1s, remap_convs, inters; ConvModule children `conv` / `bn`; BasicBlock conv1/bn1/conv2/bn2/
downsample.0/.1), so an MMPose checkpoint converts by dropping `backbone.`, renaming
`head.multi_final_layers.` -> `final_layers.` and the BN statistics (running_mean/running_var ->
_mean/_variance).

Differences from MMPose, on purpose:
- MMPose builds `inters` as a ResLayer of num_stacks - 1 blocks, and a ResLayer always makes at least one,
  so its 1-stack net registers an `inters.0` BasicBlock (1,180,672 parameters) that forward never uses.
  We build num_stacks - 1 (none for Hourglass-52): 93,666,960 parameters with 16 joints, as SPEC F.2;
  a converter drops MMPose's `backbone.inters.0.*` for 1 stack.
- MMPose hard-codes the stem to 3 -> 128 -> 256 channels; we use stage_channels[0] // 2 and
  stage_channels[0], identical for the default 256 and what lets tests build a tiny net.
- Nearest x2 upsampling is upsample_nearest_2x (same values as nn.Upsample(scale_factor=2)).
"""
from typing import List, Sequence

import paddle
import paddle.nn as nn

from lib.models.layers import BasicBlock, batch_norm, check_input_divisible, downsample, normal_conv, upsample_nearest_2x
from lib.utils.errors import BadValue

STAGE_CHANNELS = (256, 256, 384, 384, 384, 512)
STAGE_BLOCKS = (2, 2, 2, 2, 2, 4)


# ---------------------------------------------------------------------------------------------- helpers
def res_layer(num_blocks: int, in_channels: int, out_channels: int, stride: int = 1,
              downsample_first: bool = True) -> nn.Sequential:
    """MMPose's ResLayer of BasicBlocks; the block that changes channels/stride carries the projection.

    downsample_first=True: in -> out (stride) first, then out -> out. False (hourglass low3): in -> in
    blocks first, then in -> out last.
    """
    if num_blocks < 1:
        raise BadValue(f'a ResLayer needs at least one block; received num_blocks={num_blocks}. '
                       f'Fix: use stage_blocks entries >= 1.')
    projection = downsample(in_channels, out_channels, stride)
    if downsample_first:
        blocks = [BasicBlock(in_channels, out_channels, stride, projection)]
        blocks += [BasicBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
    else:
        blocks = [BasicBlock(in_channels, in_channels) for _ in range(num_blocks - 1)]
        blocks += [BasicBlock(in_channels, out_channels, stride, projection)]
    return nn.Sequential(*blocks)


# ----------------------------------------------------------------------------------------------- blocks
class ConvModule(nn.Layer):
    """mmcv's ConvModule with BN: conv (no bias) -> bn -> optional ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, act: bool = True):
        super().__init__()
        self.conv = normal_conv(in_channels, out_channels, kernel_size, stride)
        self.bn = batch_norm(out_channels)
        self.activate = nn.ReLU() if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.activate is None else self.activate(x)


class HourglassModule(nn.Layer):
    """Recursive hourglass of `depth` levels; each level halves the resolution with a stride-2 ResLayer.

    up1 = ResLayer(ch[0] -> ch[0]); low1 = ResLayer(ch[0] -> ch[1], stride 2);
    low2 = HourglassModule(depth - 1, ch[1:]) or, at the bottom, ResLayer(bl[1] blocks, ch[1] -> ch[1]);
    low3 = ResLayer(ch[1] -> ch[0], downsample last); output up1 + nearest_x2(low3).
    """

    def __init__(self, depth: int, stage_channels: Sequence[int], stage_blocks: Sequence[int]):
        super().__init__()
        channels, next_channels = stage_channels[0], stage_channels[1]
        blocks, next_blocks = stage_blocks[0], stage_blocks[1]
        self.up1 = res_layer(blocks, channels, channels)
        self.low1 = res_layer(blocks, channels, next_channels, stride=2)
        if depth > 1:
            self.low2 = HourglassModule(depth - 1, stage_channels[1:], stage_blocks[1:])
        else:
            self.low2 = res_layer(next_blocks, next_channels, next_channels)
        self.low3 = res_layer(blocks, next_channels, channels, downsample_first=False)

    def forward(self, x):
        low = self.low3(self.low2(self.low1(x)))
        return self.up1(x) + upsample_nearest_2x(low)


# ---------------------------------------------------------------------------------------------- network
class HourglassNet(nn.Layer):
    """Stacked CornerNet hourglasses + one 1x1 heatmap conv per stack (intermediate supervision).

    forward(images [N, 3, H, W]) -> list of num_stacks heatmaps [N, K, H/4, W/4], the last being the
    prediction. H and W must be multiples of 2 ** (downsample_times + 2) (128 by default).
    """

    def __init__(self, num_joints: int = 16, num_stacks: int = 1, downsample_times: int = 5,
                 stage_channels: Sequence[int] = STAGE_CHANNELS, stage_blocks: Sequence[int] = STAGE_BLOCKS,
                 feat_channel: int = 256):
        super().__init__()
        if num_stacks < 1:
            raise BadValue(f'num_stacks must be >= 1; received {num_stacks}. Fix: use hourglass52 (1 stack) '
                           f'or hourglass104 (2 stacks).')
        if len(stage_channels) != len(stage_blocks) or len(stage_channels) <= downsample_times:
            raise BadValue(f'stage_channels and stage_blocks need the same length, greater than downsample_times '
                           f'(one entry per level plus the bottom); received {len(stage_channels)} channels, '
                           f'{len(stage_blocks)} blocks, downsample_times={downsample_times}. Fix: e.g. the '
                           f'defaults {STAGE_CHANNELS}, {STAGE_BLOCKS} with downsample_times=5.')
        channels = stage_channels[0]
        self.num_stacks = num_stacks
        self.input_divisor = 2 ** (downsample_times + 2)   # stem /4, then one /2 per hourglass level
        self.stem = nn.Sequential(
            ConvModule(3, channels // 2, 7, stride=2),                  # [N, C/2, H/2, W/2]
            res_layer(1, channels // 2, channels, stride=2))            # [N, C, H/4, W/4]
        self.hourglass_modules = nn.LayerList([HourglassModule(downsample_times, stage_channels, stage_blocks)
                                               for _ in range(num_stacks)])
        self.out_convs = nn.LayerList([ConvModule(channels, feat_channel, 3) for _ in range(num_stacks)])
        self.conv1x1s = nn.LayerList([ConvModule(channels, channels, 1, act=False)
                                      for _ in range(num_stacks - 1)])
        self.remap_convs = nn.LayerList([ConvModule(feat_channel, channels, 1, act=False)
                                         for _ in range(num_stacks - 1)])
        self.inters = nn.LayerList([BasicBlock(channels, channels) for _ in range(num_stacks - 1)])
        self.relu = nn.ReLU()
        # CPMHead(deconv_out_channels=None): a 1x1 conv with bias per stack, Normal(0, 0.001), bias 0.
        self.final_layers = nn.LayerList([normal_conv(feat_channel, num_joints, 1, bias=True)
                                          for _ in range(num_stacks)])

    def forward(self, images: paddle.Tensor) -> List[paddle.Tensor]:
        check_input_divisible(images, self.input_divisor, 'HourglassNet')
        x = self.stem(images)                                           # [N, C, H/4, W/4]
        heatmaps = []
        for i in range(self.num_stacks):
            feature = self.out_convs[i](self.hourglass_modules[i](x))   # [N, F, H/4, W/4]
            heatmaps.append(self.final_layers[i](feature))              # [N, K, H/4, W/4]
            if i < self.num_stacks - 1:
                # Features only: unlike Newell's hourglass, the heatmaps are not fed back.
                x = self.inters[i](self.relu(self.conv1x1s[i](x) + self.remap_convs[i](feature)))
        return heatmaps


# --------------------------------------------------------------------------------------------- builders
def hourglass52(num_joints: int = 16, **kwargs) -> HourglassNet:
    """Hourglass-52: one CornerNet hourglass (MMPose td-hm_hourglass52). kwargs: downsample_times,
    stage_channels, stage_blocks, feat_channel (defaults as MMPose)."""
    return HourglassNet(num_joints=num_joints, num_stacks=1, **kwargs)


def hourglass104(num_joints: int = 16, **kwargs) -> HourglassNet:
    """Hourglass-104: two CornerNet hourglasses with intermediate supervision. kwargs as hourglass52."""
    return HourglassNet(num_joints=num_joints, num_stacks=2, **kwargs)
