"""ImageNet-pretrained backbones for pose_resnet, as SimpleBaselines starts from (SPEC F.3: HRNet loads
resnet50-19c8e357.pth into PoseResNet before training; the deconv head keeps its Normal(0, 0.001) init).

`load_backbone(model, path)` accepts either
- Paddle's own ImageNet weights of paddle.vision.models.resnet{18,34,50,101,152}, downloadable from
  https://paddle-hapi.bj.bcebos.com/models/resnet50.pdparams (likewise resnet18, resnet34, resnet101,
  resnet152; the addresses of paddle.vision.models.resnet.model_urls). Their keys are ours: conv1.weight,
  bn1.weight, bn1._mean, bn1._variance, layer1.0.conv1.weight, ..., plus the classifier fc.weight
  ([C, 1000]: Paddle's Linear stores [in, out]) and fc.bias, which are dropped by name; or
- the .pdparams that `tools/convert_weights.py --format torchvision_resnet` writes from torchvision's
  resnet{18,34,50,101,152}-*.pth: the backbone keys only.
Only the backbone (every key but deconv_layers.* and final_layer.*) is loaded, strictly: a missing
backbone key, a key the backbone does not have, or a shape mismatch (e.g. ResNet-18 weights for
pose_resnet_50) is a ValueError that lists them.
"""
from typing import Dict, List

import paddle

from lib.models.pose_resnet import RESNETS, Bottleneck, PoseResNet
from lib.utils.checkpoint import key_mismatches, load_file, model_state_from
from lib.utils.errors import BadType, BadValue

HEAD_PREFIXES = ('deconv_layers.', 'final_layer.')
CLASSIFIER_KEYS = ('fc.weight', 'fc.bias')     # ImageNet classifier: pose_resnet has none
PADDLE_IMAGENET_URL = 'https://paddle-hapi.bj.bcebos.com/models/resnet{depth}.pdparams'


def backbone_state(model: PoseResNet) -> Dict[str, paddle.Tensor]:
    """The model's state without the deconv head and final layer: conv1, bn1, layer1..4."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(HEAD_PREFIXES)}


def resnet_depth_of(model: PoseResNet) -> int:
    """18, 34, 50, 101 or 152, from the model's block type and blocks per stage."""
    bottleneck = isinstance(model.layer1[0], Bottleneck)
    blocks = tuple(len(getattr(model, f'layer{i}')) for i in range(1, 5))
    return next(depth for depth, spec in RESNETS.items() if spec == (bottleneck, blocks))


def check_backbone(model: PoseResNet, state: Dict[str, object], source: str) -> None:
    """Raise ValueError naming every missing backbone key, unexpected key and shape mismatch."""
    problems = key_mismatches(backbone_state(model), state, 'backbone ')
    if problems:
        depth = resnet_depth_of(model)
        raise BadValue(
            f'backbone weights in {source} do not fit the ResNet-{depth} backbone of pose_resnet_{depth}:\n'
            + problems +
            f'Pass ResNet-{depth} ImageNet weights: Paddle\'s {PADDLE_IMAGENET_URL.format(depth=depth)}, or '
            f'torchvision\'s resnet{depth}-*.pth converted with tools/convert_weights.py --format '
            'torchvision_resnet. Shape mismatches usually mean weights of another depth; a whole pose model '
            'is loaded with --pretrained_model instead.')


def set_backbone(model: PoseResNet, state: Dict[str, object], source: str) -> List[str]:
    """Check `state` against the backbone (all of it, nothing else) and load it. Returns the loaded keys."""
    check_backbone(model, state, source)
    model.set_state_dict({**model.state_dict(), **state})   # the head keeps its initialisation
    return [k for k in backbone_state(model)]


def load_backbone(model: PoseResNet, path: str) -> List[str]:
    """Load ImageNet ResNet weights (see the module docstring for the accepted files and where to get
    Paddle's) into the backbone of a pose_resnet model; fc.* is dropped by name. Returns the loaded keys."""
    if not isinstance(model, PoseResNet):
        raise BadType(f'load_backbone loads ImageNet ResNet weights into a pose_resnet model; received a '
                      f'{type(model).__name__}. Use --pretrained_backbone only with --model pose_resnet_*.')
    state = model_state_from(load_file(path), path)
    return set_backbone(model, {k: v for k, v in state.items() if k not in CLASSIFIER_KEYS}, path)
