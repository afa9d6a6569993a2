"""Key maps shared by the ResNet-based sources, mapped onto our pose_resnet (lib/models/pose_resnet.py).

torchvision's ResNet, HRNet's PoseResNet and MMPose's ResNet name the backbone alike: conv1, bn1,
layer{1..4}.{j}.{conv1, bn1, conv2, bn2[, conv3, bn3]}, and downsample.0 (1x1 conv) / downsample.1 (BN)
on the first block of a stage that changes stride or width (MMPose: norm layers built with postfix 1..3,
hence bn1..bn3; ResLayer's downsample Sequential without avg_down). SimpleBaselines' head is named alike
in HRNet's PoseResNet, MMPose 0.x TopdownHeatmapSimpleHead and 1.x HeatmapHead: deconv_layers is a
Sequential of [ConvTranspose2d (no bias), BatchNorm2d, ReLU] x 3, so tensors sit at indices 0/1, 3/4, 6/7,
and final_layer is a single 1x1 Conv2d with bias. ConvTranspose2d weights are [in, out, k, k] in both
frameworks.
"""
from typing import Dict, Tuple

from lib.convert.common import KeyMap, State, apply_key_map, bn, bn_counters, conv, indices, non_default, require
from lib.models.pose_resnet import RESNETS  # the model's own table: converters depend on models, not back
from lib.utils.errors import BadValue
DECONV_DEFAULTS = {'deconv_filters': (256, 256, 256), 'deconv_kernels': (4, 4, 4)}
NUM_DECONVS = 3   # pose_resnet's head: three x2 deconvolutions, 1/32 -> 1/4


def resnet_depth(state: State, prefix: str, what: str) -> int:
    """ResNet depth from the file: the block type (conv3 present = bottleneck) and the number of blocks
    per stage (layer3 alone separates 50 / 101 / 152)."""
    require(state, f'{prefix}layer1.0.conv1.weight', what)
    bottleneck = f'{prefix}layer1.0.conv3.weight' in state
    blocks = tuple(len(indices(state, f'{prefix}layer{stage}.')) for stage in range(1, 5))
    for depth, spec in RESNETS.items():
        if spec == (bottleneck, blocks):
            return depth
    raise BadValue(f'{what}: the backbone has {"Bottleneck" if bottleneck else "BasicBlock"} blocks {blocks} '
                   f'per stage, which is no ResNet depth we build; expected one of '
                   f'{ {d: s[1] for d, s in RESNETS.items()} }. Pass an unmodified ResNet-18/34/50/101/152 file.')


def backbone_map(depth: int, prefix: str = '') -> KeyMap:
    """Every tensor of the ResNet-`depth` backbone: '<prefix>layer2.0.conv1.weight' -> 'layer2.0.conv1.weight'."""
    bottleneck, blocks = RESNETS[depth]
    expansion = 4 if bottleneck else 1
    mapping = {**conv(f'{prefix}conv1', 'conv1', (64, 3, 7, 7)), **bn(f'{prefix}bn1', 'bn1', 64)}
    in_channels = 64
    for stage, num_blocks in enumerate(blocks):
        planes, stride = 64 * 2 ** stage, 1 if stage == 0 else 2
        out_channels = planes * expansion
        for j in range(num_blocks):
            name, cin = f'layer{stage + 1}.{j}', in_channels if j == 0 else out_channels
            if bottleneck:
                shapes = [(planes, cin, 1, 1), (planes, planes, 3, 3), (out_channels, planes, 1, 1)]
            else:
                shapes = [(planes, cin, 3, 3), (planes, planes, 3, 3)]
            for k, shape in enumerate(shapes, start=1):
                mapping.update(conv(f'{prefix}{name}.conv{k}', f'{name}.conv{k}', shape))
                mapping.update(bn(f'{prefix}{name}.bn{k}', f'{name}.bn{k}', shape[0]))
            if j == 0 and (stride != 1 or cin != out_channels):
                mapping.update(conv(f'{prefix}{name}.downsample.0', f'{name}.downsample.0', (out_channels, cin, 1, 1)))
                mapping.update(bn(f'{prefix}{name}.downsample.1', f'{name}.downsample.1', out_channels))
        in_channels = out_channels
    return mapping


def head_options(state: State, prefix: str, what: str) -> Dict[str, object]:
    """deconv_filters / deconv_kernels read from the deconv weights, num_joints from the final layer."""
    deconvs = [require(state, f'{prefix}deconv_layers.{3 * i}.weight', what).shape for i in range(NUM_DECONVS)]
    extra = [i for i in indices(state, f'{prefix}deconv_layers.') if i >= 3 * NUM_DECONVS]
    if extra:
        raise BadValue(f'{what}: deconv_layers has entries up to index {max(extra)}; pose_resnet has '
                       f'{NUM_DECONVS} deconvolutions (indices 0..{3 * NUM_DECONVS - 1}). Only the '
                       'SimpleBaselines head (NUM_DECONV_LAYERS 3) converts.')
    num_joints = int(require(state, f'{prefix}final_layer.weight', what).shape[0])
    return {'deconv_filters': tuple(int(s[1]) for s in deconvs), 'deconv_kernels': tuple(int(s[2]) for s in deconvs),
            'num_joints': num_joints}


def head_map(prefix: str, in_channels: int, deconv_filters, deconv_kernels, num_joints: int) -> KeyMap:
    """deconv_layers.{0,1,3,4,6,7} and final_layer (1x1, bias)."""
    mapping: KeyMap = {}
    for i, (filters, kernel) in enumerate(zip(deconv_filters, deconv_kernels)):
        mapping.update(conv(f'{prefix}deconv_layers.{3 * i}', f'deconv_layers.{3 * i}',
                            (in_channels, filters, kernel, kernel)))
        mapping.update(bn(f'{prefix}deconv_layers.{3 * i + 1}', f'deconv_layers.{3 * i + 1}', filters))
        in_channels = filters
    mapping.update(conv(f'{prefix}final_layer', 'final_layer', (num_joints, in_channels, 1, 1), bias=True))
    return mapping


def pose_resnet_layout(state: State, backbone: str, head: str, what: str) -> Tuple[int, Dict[str, object], KeyMap]:
    """(depth, head options, full key map) of a SimpleBaselines checkpoint whose backbone tensors start
    with `backbone` and head tensors with `head`."""
    depth = resnet_depth(state, backbone, what)
    options = head_options(state, head, what)
    in_channels = 512 * (4 if RESNETS[depth][0] else 1)
    return depth, options, {**backbone_map(depth, backbone), **head_map(head, in_channels, **options)}


def pose_resnet_spec(depth: int, options: Dict[str, object]) -> Tuple[str, Dict[str, object]]:
    """Our model name and builder kwargs: num_joints, plus the deconv options only where they differ
    from the builder's defaults (256 x 3, kernel 4: every published SimpleBaselines model)."""
    deconv = {k: options[k] for k in DECONV_DEFAULTS}
    return f'pose_resnet_{depth}', {'num_joints': options['num_joints'], **non_default(deconv, DECONV_DEFAULTS)}


class PoseResNetSource:
    """The converter functions of a checkpoint format holding a whole pose_resnet: `layout(state)` gives
    (depth, builder options, key map); `label` names a converted file in errors ({depth} is filled in)."""

    def __init__(self, layout, label: str):
        self.layout = layout
        self.label = label

    def model_spec(self, state):
        depth, options, _ = self.layout(state)
        return pose_resnet_spec(depth, options)

    def dropped_unused(self, state):
        return bn_counters(state, self.layout(state)[2])

    def convert(self, state):
        depth, _, mapping = self.layout(state)
        return apply_key_map(state, mapping, self.label.format(depth=depth))
