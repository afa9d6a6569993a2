"""Converting other codebases' pose checkpoints into our models: a registry of source formats.

A format is a `Converter`. Its `convert(source_state) -> (target_state, used_keys)` maps the source
tensors to our parameter names, `model_spec` says which of our models (and builder kwargs) the source
describes, `dropped_unused` names the source keys left out on purpose, and `conventions` holds the
data/test settings the source model was trained with (they go into config.json beside the weights).
`convert_state` runs one and fails loudly: a source key neither used nor dropped by name, a missing
target key or a shape mismatch is an error that lists them. To add a format, write a module like
princeton_hourglass.py and add it to CONVERTERS.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Set, Tuple

import numpy as np

from lib.convert import princeton_hourglass

State = Dict[str, np.ndarray]


@dataclass(frozen=True)
class Converter:
    description: str
    convert: Callable[[State], Tuple[State, Set[str]]]
    model_spec: Callable[[State], Tuple[str, Dict[str, int]]]   # -> (MODELS name, builder kwargs)
    dropped_unused: Callable[[State], Dict[str, str]]            # -> {source key: why it is dropped}
    conventions: Dict[str, dict] = field(default_factory=dict)   # config.json sections: 'data', 'test'


CONVERTERS: Dict[str, Converter] = {
    'princeton_hourglass': Converter(
        description="princeton-vl/pytorch_stacked_hourglass checkpoint.pt (PoseNet) -> 'hourglass'",
        convert=princeton_hourglass.convert,
        model_spec=princeton_hourglass.model_spec,
        dropped_unused=princeton_hourglass.dropped_unused,
        conventions=princeton_hourglass.CONVENTIONS,
    ),
}


@dataclass
class Conversion:
    model: object                   # our paddle.nn.Layer, built from the inferred kwargs, weights loaded
    model_name: str
    model_kwargs: Dict[str, int]
    state: State                    # target name -> float32 array
    used: Set[str]                  # source keys carried into `state`
    dropped: Dict[str, str]         # source keys left out on purpose -> reason
    conventions: Dict[str, dict]


def get_converter(fmt: str) -> Converter:
    if fmt not in CONVERTERS:
        raise ValueError(f'unknown source format {fmt!r}; choose one of {sorted(CONVERTERS)}.')
    return CONVERTERS[fmt]


def _listing(keys) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:10]) + (f' ... ({len(keys)} in all)' if len(keys) > 10 else '')


def convert_state(fmt: str, source: State, source_name: str) -> Conversion:
    """Convert `source` (key -> array, wrapper prefixes already stripped), build our model and load it.

    Raises ValueError naming every source key that is neither mapped nor dropped by name, and (through
    check_state_dict) every missing, unexpected or mis-shaped parameter of our model.
    """
    # Paddle is imported here so that listing a checkpoint does not pay for it.
    from lib.models import build_model
    from lib.utils.checkpoint import check_state_dict

    converter = get_converter(fmt)
    model_name, kwargs = converter.model_spec(source)
    dropped = converter.dropped_unused(source)
    target, used = converter.convert(source)
    if used & set(dropped):
        raise RuntimeError(f'converter {fmt!r} both uses and drops {_listing(used & set(dropped))}; fix its key map.')
    leftover = set(source) - used - set(dropped)
    if leftover:
        raise ValueError(f'{source_name}: {len(leftover)} source keys are not used by the {fmt!r} conversion and not '
                         f'known to be unused: {_listing(leftover)}. Expected only the keys of the reference model; '
                         'pass the unmodified checkpoint, or extend lib/convert if the source model really has them.')
    model = build_model(model_name, **kwargs)
    check_state_dict(model, target, f'{source_name} (converted from {fmt})')
    model.set_state_dict(target)
    differ = [k for k, v in model.state_dict().items() if not np.array_equal(v.numpy(), target[k])]
    if differ:
        raise RuntimeError(f'set_state_dict left {len(differ)} parameters different from the converted values: '
                           f'{_listing(differ)}.')
    return Conversion(model, model_name, kwargs, target, used, dropped, converter.conventions)
