"""txyugood/PaddlePose (the AI Studio Hourglass-52 reproduction) `model.pdparams` -> our 'hourglass52'
(lib/models/cornernet_hourglass.py; SEED_WEIGHTS 1.0).

PaddlePose ports MMPose's HourglassNet(num_stacks=1) + TopdownHeatmapMultiStageHead to Paddle line by
line and differs only in names: its conv+BN unit is a PaddleClas-style ConvBNLayer whose sublayers are
`_conv` (no bias) and `_batch_norm`, BasicBlock's conv1 / conv2 are ConvBNLayers (there is no bn1 / bn2),
and downsample is Sequential(ConvBNLayer). `paddle.save(model.state_dict(), ...)` writes 412 tensors with
Paddle's BatchNorm names (_mean / _variance) and layouts, e.g.

    backbone.stem.0._conv.weight                          -> MMPose backbone.stem.0.conv.weight
    backbone.stem.1.0.conv1._batch_norm._mean             -> backbone.stem.1.0.bn1.running_mean
    backbone.hourglass_modules.0.low1.0.downsample.0._conv.weight        -> ...downsample.0.weight
    backbone.hourglass_modules.0.low1.0.downsample.0._batch_norm.weight  -> ...downsample.1.weight
    keypoint_head.multi_final_layers.0.{weight, bias}     -> the same (MMPose 0.x head name)
    backbone.inters.0.*                                   10 tensors forward never calls (dropped)

So the file is renamed to MMPose's names here and converted by mmpose_hourglass, whose key map, shape
checks and reasons for dropping inters.0 then apply unchanged (402 tensors of hourglass52).
"""
import os
import re
from typing import Dict, Set, Tuple

from lib.convert import mmpose_hourglass
from lib.convert.common import IMAGENET_MEAN, IMAGENET_STD, State
from lib.utils.errors import BadValue

WHAT = 'a txyugood/PaddlePose hourglass52 state dict (ConvBNLayer names: ._conv / ._batch_norm)'
# Paddle BatchNorm2D -> PyTorch BatchNorm2d names (mmpose_hourglass reads the latter).
BN_TO_TORCH = {'weight': 'weight', 'bias': 'bias', '_mean': 'running_mean', '_variance': 'running_var'}
_CONV = re.compile(r'^(?P<layer>.+)\._conv\.weight$')
_BN = re.compile(r'^(?P<layer>.+)\._batch_norm\.(?P<tensor>weight|bias|_mean|_variance)$')
_BLOCK_CONV = re.compile(r'^(?P<block>.+)\.conv(?P<k>\d)$')      # BasicBlock.conv1 / conv2
_DOWNSAMPLE = '.downsample.0'

# train.py / val.py / transforms.py of PaddlePose: RGB, ImageNet mean/std, sigma 2 targets, flip test
# always on and WITHOUT the heatmap shift (TopDown passes test_cfg=None, so the head's shift_heatmap is
# False), MMPose's default decode (quarter-pixel refinement, no offset). Its Mean@0.1 is the true 0.10.
# The input is --image_size (256 or 384; the weights are the same shape for both).
CONVENTIONS = {
    'data': {'input_wh': [256, 256], 'heatmap_wh': [64, 64], 'sigma': 2.0, 'color_rgb': True,
             'mean': IMAGENET_MEAN, 'std': IMAGENET_STD},
    'test': {'flip_test': True, 'shift_heatmap': False, 'post_process': True, 'decode_offset': 0.0},
}
# PaddlePose's README keeps the two models in output/256_best_model/ and output/384_best_model/.
_SIZE_FOLDER = re.compile(r'^(256|384)_best_model$')


def is_paddlepose(keys) -> bool:
    """True for PaddlePose's layout: MMPose's top-level names with ConvBNLayer sublayers."""
    keys = list(keys)
    return (any(k.startswith('backbone.hourglass_modules.') for k in keys)
            and any(k.startswith('keypoint_head.multi_final_layers.') for k in keys)
            and any('._batch_norm.' in k or '._conv.' in k for k in keys))


def mmpose_name(key: str) -> str:
    """PaddlePose key -> the MMPose key of the same tensor; keys of no ConvBNLayer are returned unchanged
    (mmpose_hourglass then uses them by name, e.g. the head, or reports them as unknown)."""
    match = _CONV.match(key)
    if match:
        layer = match.group('layer')
        if _BLOCK_CONV.match(layer) or layer.endswith(_DOWNSAMPLE):
            return f'{layer}.weight'                    # BasicBlock convK / downsample.0: a bare conv
        return f'{layer}.conv.weight'                   # ConvModule-like (stem.0, out_convs.i, ...)
    match = _BN.match(key)
    if match:
        layer, tensor = match.group('layer'), BN_TO_TORCH[match.group('tensor')]
        block = _BLOCK_CONV.match(layer)
        if block:
            return f'{block.group("block")}.bn{block.group("k")}.{tensor}'
        if layer.endswith(_DOWNSAMPLE):
            return f'{layer[:-len(_DOWNSAMPLE)]}.downsample.1.{tensor}'
        return f'{layer}.bn.{tensor}'
    return key


def _renamed(state: State) -> Tuple[State, Dict[str, str]]:
    """(state under MMPose names, MMPose name -> PaddlePose name)."""
    if not is_paddlepose(state):
        tops = sorted({k.split('.')[0] for k in state})
        raise BadValue(f'not {WHAT}: received keys under {tops}, like {sorted(state)[:3]}; expected '
                       "'backbone.hourglass_modules.*' and 'keypoint_head.multi_final_layers.*' with ._conv / "
                       '._batch_norm sublayers. Pass output/<size>_best_model/model.pdparams of PaddlePose.')
    back = {mmpose_name(k): k for k in state}
    if len(back) != len(state):
        raise BadValue(f'{WHAT}: two keys map to the same MMPose name; the file is not an unmodified '
                       'PaddlePose state dict.')
    return {m: state[k] for m, k in back.items()}, back


def model_spec(state: State):
    return mmpose_hourglass.model_spec(_renamed(state)[0])


def dropped_unused(state: State) -> Dict[str, str]:
    renamed, back = _renamed(state)
    return {back[k]: why for k, why in mmpose_hourglass.dropped_unused(renamed).items()}


def convert(state: State) -> Tuple[State, Set[str]]:
    renamed, back = _renamed(state)
    target, used = mmpose_hourglass.convert(renamed)
    return target, {back[k] for k in used}


def conventions_for(state: State, source_path: str) -> Dict[str, dict]:
    """CONVENTIONS, at 384 x 384 (heatmaps 96) when the file sits in PaddlePose's 384_best_model/."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(source_path))) if source_path else ''
    match = _SIZE_FOLDER.match(folder)
    side = int(match.group(1)) if match else 256
    return {'data': {**CONVENTIONS['data'], 'input_wh': [side, side], 'heatmap_wh': [side // 4, side // 4]},
            'test': dict(CONVENTIONS['test'])}
