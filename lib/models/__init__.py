"""Model registry: `MODELS[name](num_joints=..., **options)` builds a network whose forward returns
a list of heatmaps [N, K, h, w], one per supervised output, the last being the prediction."""
from typing import Callable, Dict

import paddle.nn as nn

from lib.models.cornernet_hourglass import hourglass52, hourglass104
from lib.models.hourglass import stacked_hourglass
from lib.models.pose_resnet import pose_resnet_18, pose_resnet_34, pose_resnet_50, pose_resnet_101, pose_resnet_152

MODELS: Dict[str, Callable[..., nn.Layer]] = {
    'hourglass': stacked_hourglass,           # Newell et al. (princeton-vl), SPEC F.1
    'hourglass52': hourglass52,               # MMPose HourglassNet, 1 stack, SPEC F.2
    'hourglass104': hourglass104,             # MMPose HourglassNet, 2 stacks
    'pose_resnet_18': pose_resnet_18,         # SimpleBaselines (HRNet's pose_resnet), SPEC F.3
    'pose_resnet_34': pose_resnet_34,
    'pose_resnet_50': pose_resnet_50,
    'pose_resnet_101': pose_resnet_101,
    'pose_resnet_152': pose_resnet_152,
}


def build_model(name: str, **kwargs) -> nn.Layer:
    if name not in MODELS:
        raise ValueError(f'unknown model {name!r}; choose one of {sorted(MODELS)}.')
    return MODELS[name](**kwargs)
