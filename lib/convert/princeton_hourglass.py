"""princeton-vl/pytorch_stacked_hourglass `PoseNet` weights -> our `hourglass` (lib/models/hourglass.py).

The reference's train.py saves {'state_dict': Trainer.state_dict(), 'optimizer': ..., 'epoch': ...}, and
Trainer.model is DataParallel(PoseNet) (task/pose.py), so its keys read 'model.module.pre.0.conv.weight'.
The loader strips that prefix; this module sees PoseNet's own names, e.g. 'hgs.0.0.low2.low1.bn1.weight'.

The key map is built from the reference's structure (models/posenet.py, models/layers.py):

    PoseNet.pre                 Sequential[Conv(3, 64, 7, 2, bn), Residual(64, 128), Pool, Residual(128, 128),
                                Residual(128, inp_dim)]                 -> stem (same indices)
    PoseNet.hgs.{i}.0           Hourglass(4, inp_dim): up1, low1, low2 (recursive), low3 -> hourglasses.{i}
    PoseNet.features.{i}        Sequential[Residual, Conv(1x1, bn, relu)]                -> features.{i}
    PoseNet.outs.{i}            Conv(1x1), no BN                                        -> heads.{i}
    PoseNet.merge_*.{i}.conv    Merge wraps a Conv, hence '.conv.conv.'                 -> merge_*.{i}
    Conv.conv / Conv.bn         nn.Conv2d / nn.BatchNorm2d                              -> ConvBNReLU.conv / .bn
    Residual.convK.conv         Residual's convs are Conv modules                       -> Residual.convK
    Residual.skip_layer.conv    used only when in != out                                -> Residual.skip

Both frameworks keep conv weights as [out, in, kH, kW]. BatchNorm's running_mean / running_var are
Paddle's _mean / _variance; num_batches_tracked has no Paddle counterpart and is dropped. The reference's
Residual creates skip_layer even when in == out and never calls it (SPEC F.1, decision 5): those
tensors are dropped by name, so 8 stacks keep 25,434,112 of the 32,819,328 registered parameters.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Set, Tuple

import numpy as np

from lib.convert.common import BN_TENSORS, COUNTER_REASON, State, apply_key_map
from lib.utils.errors import BadValue

DEPTH = 4           # PoseNet builds Hourglass(4, inp_dim) whatever its config says
STEM_WIDTH = 128    # PoseNet's stem is Residual(64, 128) ... Residual(128, inp_dim), fixed

# What a converted princeton-vl model was trained with, written to config.json beside the weights:
# RGB in [0, 1] without mean/std (data/MPII/dp.py), sigma 1 targets drawn at the truncated joint position,
# so its test code adds 0.5 heatmap pixel when decoding (SPEC C.5, D.2), flip test without HRNet's heatmap
# shift (test.py), 256 px crops and 64 px heatmaps (task/pose.py).
CONVENTIONS = {
    'data': {'input_wh': [256, 256], 'heatmap_wh': [64, 64], 'sigma': 1.0, 'color_rgb': True,
             'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0]},
    'test': {'shift_heatmap': False, 'decode_offset': 0.5},
}


@dataclass(frozen=True)
class Layer:
    """One conv or BN layer: its module name in PoseNet, in StackedHourglass, and its weight shape."""
    source: str
    target: str
    kind: str               # 'conv' or 'bn'
    shape: Tuple[int, ...]  # conv weight [out, in, k, k]; bn [C]

    def tensors(self) -> List[Tuple[str, str, Tuple[int, ...]]]:
        """(source key, target key, shape) of every tensor the layer carries into our model."""
        if self.kind == 'conv':
            return [(f'{self.source}.weight', f'{self.target}.weight', self.shape),
                    (f'{self.source}.bias', f'{self.target}.bias', self.shape[:1])]
        return [(f'{self.source}.{s}', f'{self.target}.{t}', self.shape) for s, t in BN_TENSORS.items()]


def _conv(source: str, target: str, cin: int, cout: int, k: int) -> Layer:
    return Layer(source, target, 'conv', (cout, cin, k, k))


def _bn(source: str, target: str, channels: int) -> Layer:
    return Layer(source, target, 'bn', (channels,))


class _Structure:
    """Walks PoseNet's structure and collects the layers, plus the skip convs it never uses."""

    def __init__(self):
        self.layers: List[Layer] = []
        self.unused_skips: List[Layer] = []

    def conv_block(self, src: str, tgt: str, cin: int, cout: int, k: int, bn: bool) -> None:
        """The reference's Conv (conv + optional BN) -> our ConvBNReLU."""
        self.layers.append(_conv(f'{src}.conv', f'{tgt}.conv', cin, cout, k))
        if bn:
            self.layers.append(_bn(f'{src}.bn', f'{tgt}.bn', cout))

    def residual(self, src: str, tgt: str, cin: int, cout: int) -> None:
        mid = cout // 2
        self.layers += [_bn(f'{src}.bn1', f'{tgt}.bn1', cin),
                        _conv(f'{src}.conv1.conv', f'{tgt}.conv1', cin, mid, 1),
                        _bn(f'{src}.bn2', f'{tgt}.bn2', mid),
                        _conv(f'{src}.conv2.conv', f'{tgt}.conv2', mid, mid, 3),
                        _bn(f'{src}.bn3', f'{tgt}.bn3', mid),
                        _conv(f'{src}.conv3.conv', f'{tgt}.conv3', mid, cout, 1)]
        skip = _conv(f'{src}.skip_layer.conv', f'{tgt}.skip', cin, cout, 1)
        (self.layers if cin != cout else self.unused_skips).append(skip)

    def hourglass(self, src: str, tgt: str, depth: int, channels: int) -> None:
        self.residual(f'{src}.up1', f'{tgt}.up1', channels, channels)
        self.residual(f'{src}.low1', f'{tgt}.low1', channels, channels)
        if depth > 1:
            self.hourglass(f'{src}.low2', f'{tgt}.low2', depth - 1, channels)
        else:
            self.residual(f'{src}.low2', f'{tgt}.low2', channels, channels)
        self.residual(f'{src}.low3', f'{tgt}.low3', channels, channels)


def layer_map(num_stacks: int, num_features: int, num_joints: int, stem_width: int = STEM_WIDTH) -> _Structure:
    """Every conv/BN layer of PoseNet(num_stacks, inp_dim=num_features, oup_dim=num_joints); `stem_width` other than
    the reference's 128 only for a narrowed PoseNet whose stem is num_features // 2 as ours (the learning-parity
    benchmark's small reference, benchmarks/torch_reference.py)."""
    s = _Structure()
    s.conv_block('pre.0', 'stem.0', 3, 64, 7, bn=True)
    s.residual('pre.1', 'stem.1', 64, stem_width)
    s.residual('pre.3', 'stem.3', stem_width, stem_width)     # pre.2 is the max-pool
    s.residual('pre.4', 'stem.4', stem_width, num_features)
    for i in range(num_stacks):
        s.hourglass(f'hgs.{i}.0', f'hourglasses.{i}', DEPTH, num_features)
        s.residual(f'features.{i}.0', f'features.{i}.0', num_features, num_features)
        s.conv_block(f'features.{i}.1', f'features.{i}.1', num_features, num_features, 1, bn=True)
        s.conv_block(f'outs.{i}', f'heads.{i}', num_features, num_joints, 1, bn=False)
    for i in range(num_stacks - 1):
        s.conv_block(f'merge_features.{i}.conv', f'merge_features.{i}', num_features, num_features, 1, bn=False)
        s.conv_block(f'merge_preds.{i}.conv', f'merge_preds.{i}', num_joints, num_features, 1, bn=False)
    return s


def key_map(num_stacks: int, num_features: int, num_joints: int,
            stem_width: int = STEM_WIDTH) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """The explicit map: source key -> (target key, expected shape)."""
    return {src: (tgt, shape) for layer in layer_map(num_stacks, num_features, num_joints, stem_width).layers
            for src, tgt, shape in layer.tensors()}


def _require(state: State, key: str) -> np.ndarray:
    if key not in state:
        sample = ', '.join(sorted(state)[:5]) or 'none'
        raise BadValue(f'not a princeton-vl PoseNet state dict: key {key!r} is missing (received keys like '
                       f'{sample}; {len(state)} in all). Expected the \'state_dict\' of the checkpoint.pt '
                       'written by princeton-vl/pytorch_stacked_hourglass train.py.')
    return state[key]


def model_spec(state: State) -> Tuple[str, Dict[str, int]]:
    """Our model name and builder kwargs for the PoseNet these weights come from."""
    stacks = sorted({int(m.group(1)) for k in state for m in [re.match(r'hgs\.(\d+)\.', k)] if m})
    if not stacks or stacks != list(range(len(stacks))):
        raise BadValue(f'princeton-vl PoseNet keys hgs.<i>.* should number the stacks 0..S-1; received stack '
                       f'indices {stacks}. Pass the whole, unmodified state_dict of the checkpoint.')
    num_features = int(_require(state, 'pre.4.conv3.conv.weight').shape[0])
    num_joints = int(_require(state, 'outs.0.conv.weight').shape[0])
    stem = int(_require(state, 'pre.1.conv3.conv.weight').shape[0])
    depth = max((k.split('.').count('low2') for k in state if k.startswith('hgs.0.0.')), default=0)
    if depth != DEPTH:
        raise BadValue(f'the source hourglass has depth {depth} (nested low2 modules); our hourglass builder '
                       f'has depth {DEPTH}, as princeton-vl\'s PoseNet. Only depth-{DEPTH} checkpoints convert.')
    if stem != STEM_WIDTH or num_features // 2 != STEM_WIDTH:
        raise BadValue(f'the source stem is {stem} channels wide with inp_dim {num_features}; our hourglass '
                       f'makes its stem num_features // 2 wide, so it can hold princeton-vl\'s fixed '
                       f'{STEM_WIDTH}-channel stem only for inp_dim = {2 * STEM_WIDTH} (the published 2- and '
                       '8-stack checkpoints). Convert a checkpoint trained with inp_dim 256.')
    return 'hourglass', {'num_stacks': len(stacks), 'num_features': num_features, 'num_joints': num_joints}


def dropped_unused(state: State) -> Dict[str, str]:
    """Source keys left out on purpose, by name, with the reason: the skip convs of residuals with
    in == out (created but never called) and BatchNorm's num_batches_tracked counters."""
    _, kwargs = model_spec(state)
    structure = layer_map(**kwargs)
    dropped = {}
    for layer in structure.unused_skips:
        for key, _, shape in layer.tensors():
            if key not in state:
                continue
            if tuple(state[key].shape) != shape:
                raise BadValue(f'{key}: received shape {tuple(state[key].shape)}, expected {shape} (the unused '
                               'skip conv of a Residual with in == out). The checkpoint comes from a modified '
                               'PoseNet; convert the unmodified reference model.')
            dropped[key] = 'unused skip_layer (Residual with in == out never calls it; SPEC F.1)'
    for layer in structure.layers:
        key = f'{layer.source}.num_batches_tracked'
        if layer.kind == 'bn' and key in state:
            dropped[key] = COUNTER_REASON
    return dropped


def convert(state: State) -> Tuple[State, Set[str]]:
    """Map PoseNet's tensors to our names. Returns (target state, source keys used)."""
    _, kwargs = model_spec(state)
    return apply_key_map(state, key_map(**kwargs), f'a princeton-vl PoseNet with {kwargs}')
