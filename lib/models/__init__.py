"""Model registry: `MODELS[name](num_joints=..., **options)` builds a network whose forward returns
a list of heatmaps [N, K, h, w], one per supervised output, the last being the prediction."""
import inspect
from typing import Callable, Dict, Optional

import paddle.nn as nn

from lib.models.cornernet_hourglass import hourglass52, hourglass104
from lib.models.hourglass import stacked_hourglass
from lib.models.pose_resnet import pose_resnet_18, pose_resnet_34, pose_resnet_50, pose_resnet_101, pose_resnet_152
from lib.utils.errors import BadValue

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


# Input sides must be multiples of these: the network halves the resolution this many times in all.
INPUT_MULTIPLE = {'hourglass': 64, 'hourglass52': 128, 'hourglass104': 128,
                  **{name: 32 for name in MODELS if name.startswith('pose_resnet')}}


def check_input_size(name: str, input_wh, source: str = '') -> None:
    """BadValue unless both sides of input_wh (width, height) suit the network; `source`: where the size came
    from (TrainConfig.source_of)."""
    multiple = INPUT_MULTIPLE.get(name, 4)
    bad = [side for side in input_wh if side < multiple or side % multiple]
    if bad:
        width, height = (max(multiple, round(side / multiple) * multiple) for side in input_wh)
        suggestion = str(width) if width == height else f'{height}x{width}'
        origin = f' (from {source})' if source else ''
        raise BadValue(f'{name} needs input sides that are multiples of {multiple}; received {input_wh[1]}x'
                       f'{input_wh[0]}{origin}. Use e.g. --image_size {suggestion}; the references use 256 and 384.')


def build_model(name: str, **kwargs) -> nn.Layer:
    if name not in MODELS:
        raise BadValue(f'unknown model {name!r}; choose one of {sorted(MODELS)}.')
    return MODELS[name](**kwargs)


def model_options(config, source_of: Optional[Callable[[str], str]] = None) -> dict:
    """Builder keyword arguments of a ModelConfig: num_joints always; num_stacks / num_features only for
    the models whose builders take them, and only when set (0 = the builder's default). `source_of`: where
    each 'model.<key>' came from (TrainConfig.source_of), so that an option that was not a flag is not
    blamed on one."""
    if config.name not in MODELS:
        raise BadValue(f'unknown model {config.name!r}; choose one of {sorted(MODELS)}.')
    accepted = inspect.signature(MODELS[config.name]).parameters
    options = {'num_joints': config.num_joints}
    for key in ('num_stacks', 'num_features'):
        value = getattr(config, key)
        if value and key not in accepted:
            source = source_of(f'model.{key}') if source_of else 'the flags'
            fix = {'the flags': f'Remove --{key}.', '--set': f'Remove --set model.{key}={value}.'}.get(
                source, f'{key}={value} was not given on the command line: it comes from {source}. Drop --model '
                        f'{config.name} to use the model described there, or give weights of a {config.name}.')
            raise BadValue(f'{config.name} has no option {key} (received {value}); it applies to the '
                           "'hourglass' model only. " + fix)
        if value:
            options[key] = value
    return options


def check_model(config) -> None:
    """Before any data is read or any weights loaded: the resolved TrainConfig's input size fits its network,
    and its model options exist; the errors say where the values came from."""
    check_input_size(config.model.name, config.data.input_wh, config.source_of('data.input_wh'))
    model_options(config.model, config.source_of)


def build_model_from(config) -> nn.Layer:
    """Build the network a ModelConfig describes."""
    return MODELS[config.name](**model_options(config))
