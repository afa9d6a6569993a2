"""Pieces every converter uses: the explicit key map, BatchNorm renaming, and the checks that make a
conversion fail loudly (missing source tensors, wrong shapes, unknown wrapper prefixes).

A key map is `{source key: (target key, expected shape)}`, written out from the source model's structure,
never guessed from the names in the file. `apply_key_map` checks the file against it and renames.
"""
import re
from typing import Dict, List, Set, Tuple

import numpy as np

from lib import config
from lib.utils.errors import BadValue

State = Dict[str, np.ndarray]
Shape = Tuple[int, ...]
KeyMap = Dict[str, Tuple[str, Shape]]

# PyTorch BatchNorm2d -> Paddle BatchNorm2D. num_batches_tracked has no Paddle counterpart (and eval
# does not read it); it is dropped by name, see bn_counters.
BN_TENSORS = {'weight': 'weight', 'bias': 'bias', 'running_mean': '_mean', 'running_var': '_variance'}
COUNTER_REASON = 'BatchNorm num_batches_tracked (no Paddle counterpart; not used in eval)'

# MMPose wraps the backbone and the head of a top-down model: 0.x `TopDown` names the head
# `keypoint_head`, 1.x `TopdownPoseEstimator` names it `head`.
MMPOSE_BACKBONE = 'backbone.'
MMPOSE_HEADS = ('keypoint_head.', 'head.')


def conv(source: str, target: str, shape: Shape, bias: bool = False) -> KeyMap:
    """A Conv2d / ConvTranspose2d: weight of `shape` ([out, in, k, k], or [in, out, k, k] transposed;
    both frameworks store them alike), plus bias [shape[0]] when the layer has one."""
    mapping = {f'{source}.weight': (f'{target}.weight', tuple(shape))}
    if bias:
        mapping[f'{source}.bias'] = (f'{target}.bias', (shape[0],))
    return mapping


def bn(source: str, target: str, channels: int) -> KeyMap:
    """A BatchNorm2d of `channels`: affine parameters and running statistics, renamed for Paddle."""
    return {f'{source}.{s}': (f'{target}.{t}', (channels,)) for s, t in BN_TENSORS.items()}


def bn_counters(state: State, mapping: KeyMap) -> Dict[str, str]:
    """The num_batches_tracked entries of the BatchNorms in `mapping` that the file holds, with the reason
    they are dropped (files saved before PyTorch 0.4.1, such as resnet50-19c8e357.pth, have none)."""
    counters = [src[:-len('running_mean')] + 'num_batches_tracked' for src in mapping if src.endswith('.running_mean')]
    return {key: COUNTER_REASON for key in counters if key in state}


def listing(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:limit]) + (f' ... ({len(keys)} in all)' if len(keys) > limit else '') if keys else 'none'


def require(state: State, key: str, what: str) -> np.ndarray:
    """state[key], or a ValueError saying which file layout was expected."""
    if key not in state:
        raise BadValue(f'not {what}: key {key!r} is missing (received {len(state)} keys, like '
                       f'{listing(list(state)[:5], 5)}). Pass the unmodified checkpoint of that model.')
    return state[key]


def indices(state: State, prefix: str) -> List[int]:
    """The sorted child indices i of the keys '<prefix><i>.*' (the length of a ModuleList/Sequential)."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    return sorted({int(m.group(1)) for k in state for m in [pattern.match(k)] if m})


def apply_key_map(state: State, mapping: KeyMap, what: str) -> Tuple[State, Set[str]]:
    """Rename the source tensors to our names after checking that each exists with its expected shape.
    Returns (target state as float32 arrays, source keys used)."""
    missing = [k for k in mapping if k not in state]
    if missing:
        raise BadValue(f'the source lacks {len(missing)} tensors that {what} has: {listing(missing)}. '
                       'The checkpoint is truncated or comes from a modified model.')
    wrong = [f'{src} -> {tgt}: received {tuple(state[src].shape)}, expected {shape}'
             for src, (tgt, shape) in mapping.items() if tuple(state[src].shape) != shape]
    if wrong:
        raise BadValue(f'{len(wrong)} source tensors do not have the shape {what} gives them: '
                       f'{"; ".join(wrong[:8])}{" ..." if len(wrong) > 8 else ""}. The checkpoint comes from '
                       'a modified model; convert the unmodified reference model.')
    return {tgt: np.asarray(state[src], dtype=np.float32) for src, (tgt, _) in mapping.items()}, set(mapping)


def check_dropped_shapes(state: State, mapping: KeyMap, why: str) -> Dict[str, str]:
    """Keys dropped on purpose, shape-checked too, so that only what the reference builds is dropped."""
    dropped = {}
    for key, (_, shape) in mapping.items():
        if key not in state:
            continue
        if tuple(state[key].shape) != shape:
            raise BadValue(f'{key}: received shape {tuple(state[key].shape)}, expected {shape} ({why}). The '
                           'checkpoint comes from a modified model; convert the unmodified reference model.')
        dropped[key] = why
    return dropped


def mmpose_head_prefix(state: State) -> str:
    """'keypoint_head.' (MMPose 0.x) or 'head.' (1.x): the one the file uses, checked to be alone."""
    found = [p for p in MMPOSE_HEADS if any(k.startswith(p) for k in state)]
    if len(found) != 1 or not any(k.startswith(MMPOSE_BACKBONE) for k in state):
        tops = sorted({k.split('.')[0] + '.' for k in state})
        raise BadValue(f'not an MMPose top-down checkpoint: its keys start with {tops}; expected '
                       f'{MMPOSE_BACKBONE!r} and one of {list(MMPOSE_HEADS)} (0.x TopDown / 1.x '
                       'TopdownPoseEstimator). Pass the .pth from the MMPose model zoo unmodified.')
    return found[0]


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def non_default(options: Dict[str, object], defaults: Dict[str, object]) -> Dict[str, object]:
    """The builder options that differ from the builder's defaults (sequences as lists, for JSON)."""
    return {k: _plain(v) for k, v in options.items() if _plain(v) != _plain(defaults[k])}


# ImageNet statistics on [0, 1] pixels in RGB order: MMPose's mean (123.675, 116.28, 103.53) and std
# (58.395, 57.12, 57.375) on 0-255 pixels are these x 255; torchvision and HRNet use them as they are.
IMAGENET_MEAN = list(config.IMAGENET_MEAN)   # lists, as config.json holds them
IMAGENET_STD = list(config.IMAGENET_STD)


def heatmap_conventions(color_rgb: bool) -> Dict[str, dict]:
    """config.json sections of a 256 x 256 MPII heatmap model with ImageNet normalisation, sigma 2 targets
    and flip test with the one-column shift (MMPose and HRNet MPII configs alike)."""
    return {'data': {'input_wh': [256, 256], 'heatmap_wh': [64, 64], 'sigma': 2.0, 'color_rgb': color_rgb,
                     'mean': IMAGENET_MEAN, 'std': IMAGENET_STD},
            'test': {'flip_test': True, 'shift_heatmap': True}}
