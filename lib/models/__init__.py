"""Model registry: `MODELS[name](num_joints=..., **options)` builds a network whose forward returns
a list of heatmaps [N, K, h, w], one per supervised output, the last being the prediction."""
import inspect
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


def build_model_from(config) -> nn.Layer:
    """Build from a ModelConfig: num_joints always; num_stacks / num_features only for the models
    whose builders take them, and only when set (0 = the builder's default)."""
    builder = MODELS.get(config.name)
    if builder is None:
        return build_model(config.name)        # raises with the list of choices
    accepted = inspect.signature(builder).parameters
    options = {'num_joints': config.num_joints}
    for key in ('num_stacks', 'num_features'):
        value = getattr(config, key)
        if value and key not in accepted:
            raise ValueError(f'{config.name} has no option {key} (received {value}); it applies to the '
                             "'hourglass' model only. Remove --" + key + '.')
        if value:
            options[key] = value
    return builder(**options)
