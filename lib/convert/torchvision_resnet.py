"""torchvision ImageNet ResNet weights (resnet{18,34,50,101,152}-*.pth) -> the BACKBONE of our
'pose_resnet_{depth}', for train.py --pretrained_backbone (lib/models/pretrained.load_backbone).

The files are bare state dicts of torchvision.models.ResNet: conv1, bn1, layer{1..4}.{j}.{conv1, bn1,
conv2, bn2[, conv3, bn3], downsample.0/.1} (our names; BN statistics renamed) and the classifier fc.weight
[1000, C] / fc.bias, which pose_resnet does not have and are dropped by name. This is what HRNet loads
non-strictly into PoseResNet (MODEL.PRETRAINED: resnet50-19c8e357.pth) and MMPose as
'torchvision://resnet50'. The result holds the backbone only: the deconv head and final layer stay as
initialised (Normal(0, 0.001)).
"""
from typing import Dict, Set, Tuple

from lib.convert import resnet_maps
from lib.convert.common import IMAGENET_MEAN, IMAGENET_STD, State, apply_key_map, bn_counters, check_dropped_shapes

WHAT = 'a torchvision ResNet (resnet*-*.pth) state dict'
CLASSIFIER = 'ImageNet classifier fc (pose_resnet has no fc)'

# What the ImageNet weights were trained with (torchvision: RGB, ImageNet mean/std). Not written to a
# config.json: the pose model's own recipe (HRNet feeds BGR, SPEC J.7) decides the training input.
CONVENTIONS = {'data': {'color_rgb': True, 'mean': IMAGENET_MEAN, 'std': IMAGENET_STD}}


def _depth(state: State) -> int:
    return resnet_maps.resnet_depth(state, '', WHAT)


def model_spec(state: State) -> Tuple[str, Dict[str, object]]:
    return f'pose_resnet_{_depth(state)}', {}


def dropped_unused(state: State) -> Dict[str, str]:
    depth = _depth(state)
    channels = 512 * (4 if resnet_maps.RESNETS[depth][0] else 1)
    classes = int(state['fc.bias'].shape[0]) if 'fc.bias' in state else 1000
    fc = {'fc.weight': ('', (classes, channels)), 'fc.bias': ('', (classes,))}
    return {**check_dropped_shapes(state, fc, CLASSIFIER), **bn_counters(state, resnet_maps.backbone_map(depth))}


def convert(state: State) -> Tuple[State, Set[str]]:
    depth = _depth(state)
    return apply_key_map(state, resnet_maps.backbone_map(depth), f'a torchvision resnet{depth}')
