"""MMPose hourglass52 / hourglass104 checkpoints -> our 'hourglass52' / 'hourglass104'
(lib/models/cornernet_hourglass.py, SPEC F.2).

MMPose saves {'state_dict': ..., 'meta': ...}; the loader takes 'state_dict'. Its keys (read from
mmpose/models/backbones/hourglass.py and resnet.py, heads/heatmap_heads/cpm_head.py, and 0.x
heads/topdown_heatmap_multi_stage_head.py):

    backbone.stem.0.{conv, bn}                 ConvModule(3, 128, 7, stride 2)      -> stem.0.{conv, bn}
    backbone.stem.1.0.*                        ResLayer(1 BasicBlock, 128 -> 256, stride 2)  -> stem.1.0.*
    backbone.hourglass_modules.{i}.{up1, low1, low2, low3}.{j}.*   ResLayers of BasicBlocks
                                               (conv1, bn1, conv2, bn2, downsample.0/.1); low2 nests the
                                               next level, down to a ResLayer     -> hourglass_modules.{i}.*
    backbone.out_convs.{i}.{conv, bn}          ConvModule(256, feat_channel, 3)     -> out_convs.{i}.*
    backbone.{conv1x1s, remap_convs}.{i}.{conv, bn}  between stacks              -> same names
    backbone.inters.{i}.*                      ResLayer of num_stacks - 1 BasicBlocks -> inters.{i}.*
    keypoint_head.multi_final_layers.{i}.{weight, bias}   0.x TopdownHeatmapMultiStageHead (no deconvs,
    head.multi_final_layers.{i}.{weight, bias}            1x1 Conv2d) / 1.x CPMHead -> final_layers.{i}.*

The heads' multi_deconv_layers are nn.Identity (no tensors). A ResLayer of 0 blocks still builds one,
so MMPose's 1-stack model registers a `backbone.inters.0` BasicBlock that forward never calls; ours
does not build it, and it is dropped here by name (SPEC F.2: 93,666,960 of 94,847,632 parameters).
MMPose hard-codes the stem to 3 -> 128 -> 256; our stem is stage_channels[0] // 2 -> stage_channels[0],
the same for every MMPose model (whose stage_channels[0] must be 256).
"""
from typing import Dict, Sequence, Set, Tuple

from lib.convert.common import (MMPOSE_BACKBONE, KeyMap, State, apply_key_map, bn, bn_counters,
                                check_dropped_shapes, conv, heatmap_conventions, indices, mmpose_head_prefix,
                                non_default, require)
from lib.utils.errors import BadValue

WHAT = 'an MMPose HourglassNet + CPMHead (hourglass52/104) state dict'
MODEL_NAMES = {1: 'hourglass52', 2: 'hourglass104'}
DEFAULTS = {'downsample_times': 5, 'stage_channels': (256, 256, 384, 384, 384, 512),
            'stage_blocks': (2, 2, 2, 2, 2, 4), 'feat_channel': 256}
UNUSED_INTER = ('MMPose 1-stack inters.0 BasicBlock (a ResLayer of num_stacks - 1 = 0 blocks still builds '
                'one; forward never calls it; SPEC F.2)')

# td-hm_hourglass52_8xb64-210e_mpii-256x256 (1.x) / hourglass52_mpii_256x256 (0.x): RGB with ImageNet
# mean/std, sigma 2, flip test with shift_heatmap=True.
CONVENTIONS = heatmap_conventions(color_rgb=True)


# --------------------------------------------------------------------------------------- structure
def conv_module(src: str, tgt: str, cin: int, cout: int, k: int) -> KeyMap:
    """mmcv ConvModule with BN: conv (no bias) and bn."""
    return {**conv(f'{src}.conv', f'{tgt}.conv', (cout, cin, k, k)), **bn(f'{src}.bn', f'{tgt}.bn', cout)}


def basic_block(src: str, tgt: str, cin: int, cout: int, stride: int = 1) -> KeyMap:
    mapping = {**conv(f'{src}.conv1', f'{tgt}.conv1', (cout, cin, 3, 3)), **bn(f'{src}.bn1', f'{tgt}.bn1', cout),
               **conv(f'{src}.conv2', f'{tgt}.conv2', (cout, cout, 3, 3)), **bn(f'{src}.bn2', f'{tgt}.bn2', cout)}
    if stride != 1 or cin != cout:
        mapping.update(conv(f'{src}.downsample.0', f'{tgt}.downsample.0', (cout, cin, 1, 1)))
        mapping.update(bn(f'{src}.downsample.1', f'{tgt}.downsample.1', cout))
    return mapping


def res_layer(src: str, tgt: str, blocks: int, cin: int, cout: int, stride: int = 1,
              downsample_first: bool = True) -> KeyMap:
    """MMPose ResLayer: the block that changes width/stride comes first, or last (hourglass low3)."""
    if downsample_first:
        specs = [(cin, cout, stride)] + [(cout, cout, 1)] * (blocks - 1)
    else:
        specs = [(cin, cin, 1)] * (blocks - 1) + [(cin, cout, stride)]
    mapping: KeyMap = {}
    for j, (a, b, s) in enumerate(specs):
        mapping.update(basic_block(f'{src}.{j}', f'{tgt}.{j}', a, b, s))
    return mapping


def hourglass_module(src: str, tgt: str, depth: int, channels: Sequence[int], blocks: Sequence[int]) -> KeyMap:
    mapping = {**res_layer(f'{src}.up1', f'{tgt}.up1', blocks[0], channels[0], channels[0]),
               **res_layer(f'{src}.low1', f'{tgt}.low1', blocks[0], channels[0], channels[1], stride=2),
               **res_layer(f'{src}.low3', f'{tgt}.low3', blocks[0], channels[1], channels[0], downsample_first=False)}
    if depth > 1:
        mapping.update(hourglass_module(f'{src}.low2', f'{tgt}.low2', depth - 1, channels[1:], blocks[1:]))
    else:
        mapping.update(res_layer(f'{src}.low2', f'{tgt}.low2', blocks[1], channels[1], channels[1]))
    return mapping


def key_map(head: str, num_stacks: int, num_joints: int, downsample_times: int, stage_channels: Sequence[int],
            stage_blocks: Sequence[int], feat_channel: int) -> KeyMap:
    """Every tensor of MMPose's HourglassNet(num_stacks, ...) + CPMHead, except the unused 1-stack inters.0."""
    b, ch = MMPOSE_BACKBONE, stage_channels[0]
    mapping = {**conv_module(f'{b}stem.0', 'stem.0', 3, ch // 2, 7),
               **res_layer(f'{b}stem.1', 'stem.1', 1, ch // 2, ch, stride=2)}
    for i in range(num_stacks):
        mapping.update(hourglass_module(f'{b}hourglass_modules.{i}', f'hourglass_modules.{i}', downsample_times,
                                        stage_channels, stage_blocks))
        mapping.update(conv_module(f'{b}out_convs.{i}', f'out_convs.{i}', ch, feat_channel, 3))
        mapping.update(conv(f'{head}multi_final_layers.{i}', f'final_layers.{i}', (num_joints, feat_channel, 1, 1),
                            bias=True))
    for i in range(num_stacks - 1):
        mapping.update(conv_module(f'{b}conv1x1s.{i}', f'conv1x1s.{i}', ch, ch, 1))
        mapping.update(conv_module(f'{b}remap_convs.{i}', f'remap_convs.{i}', feat_channel, ch, 1))
        mapping.update(basic_block(f'{b}inters.{i}', f'inters.{i}', ch, ch))
    return mapping


# ------------------------------------------------------------------------------------ read the file
def _layout(state: State) -> Dict[str, object]:
    """Head prefix, stacks, joints and the HourglassNet options, read from the tensor names and shapes."""
    head = mmpose_head_prefix(state)
    stacks = indices(state, f'{MMPOSE_BACKBONE}hourglass_modules.')
    if stacks != list(range(len(stacks))) or len(stacks) not in MODEL_NAMES:
        raise BadValue(f'{WHAT}: backbone.hourglass_modules.<i> numbers stacks {stacks}; our hourglass52 / '
                       'hourglass104 have 1 / 2 stacks. Convert an MMPose hourglass52 or hourglass104 checkpoint.')
    first = f'{MMPOSE_BACKBONE}hourglass_modules.0'
    depth = max(k[len(first):].split('.').count('low2') for k in state if k.startswith(first + '.'))
    levels = [first + '.low2' * level for level in range(depth + 1)]   # the last one is the bottom ResLayer
    channels = [int(require(state, f'{p}.up1.0.conv1.weight', WHAT).shape[0]) for p in levels[:-1]]
    channels.append(int(require(state, f'{levels[-1]}.0.conv1.weight', WHAT).shape[0]))
    blocks = [len(indices(state, f'{p}.up1.')) for p in levels[:-1]] + [len(indices(state, f'{levels[-1]}.'))]
    return {'head': head, 'num_stacks': len(stacks),
            'num_joints': int(require(state, f'{head}multi_final_layers.0.weight', WHAT).shape[0]),
            'downsample_times': depth, 'stage_channels': tuple(channels), 'stage_blocks': tuple(blocks),
            'feat_channel': int(require(state, f'{MMPOSE_BACKBONE}out_convs.0.conv.weight', WHAT).shape[0])}


def model_spec(state: State) -> Tuple[str, Dict[str, object]]:
    """'hourglass52' (1 stack) or 'hourglass104' (2), num_joints, and the HourglassNet options that differ
    from MMPose's defaults (none for the published checkpoints)."""
    layout = _layout(state)
    options = {k: layout[k] for k in DEFAULTS}
    return MODEL_NAMES[layout['num_stacks']], {'num_joints': layout['num_joints'], **non_default(options, DEFAULTS)}


def _unused_inter(layout: Dict[str, object]) -> KeyMap:
    if layout['num_stacks'] != 1:
        return {}
    ch = layout['stage_channels'][0]
    return basic_block(f'{MMPOSE_BACKBONE}inters.0', 'inters.0', ch, ch)


def dropped_unused(state: State) -> Dict[str, str]:
    """By name: the 1-stack model's inters.0 BasicBlock (only when num_stacks == 1) and BN counters."""
    layout = _layout(state)
    unused = _unused_inter(layout)
    dropped = check_dropped_shapes(state, unused, UNUSED_INTER)
    dropped.update({k: UNUSED_INTER for k in bn_counters(state, unused)})
    dropped.update(bn_counters(state, key_map(**layout)))
    return dropped


def convert(state: State) -> Tuple[State, Set[str]]:
    layout = _layout(state)
    return apply_key_map(state, key_map(**layout), f'an MMPose {MODEL_NAMES[layout["num_stacks"]]}')
