"""Model registry: `MODELS[name](num_joints=..., **options)` builds a network whose forward returns
a list of heatmaps [N, K, h, w], one per supervised output, the last being the prediction."""
from typing import Callable, Dict

import paddle.nn as nn

from lib.models.hourglass import stacked_hourglass

MODELS: Dict[str, Callable[..., nn.Layer]] = {
    'hourglass': stacked_hourglass,
}


def build_model(name: str, **kwargs) -> nn.Layer:
    if name not in MODELS:
        raise ValueError(f'unknown model {name!r}; choose one of {sorted(MODELS)}.')
    return MODELS[name](**kwargs)
