"""Converting other codebases' pose checkpoints into our models: a registry of source formats.

A format is a `Converter`. Its `convert(source_state) -> (target_state, used_keys)` maps the source
tensors to our parameter names, `model_spec` says which of our models (and builder kwargs) the source
describes, `dropped_unused` names the source keys left out on purpose, and `conventions` holds the
data/test settings the source model was trained with (they go into config.json beside the weights).
A `backbone_only` format (ImageNet classifiers) fills only the backbone of the target model.
`convert_state` runs one and fails loudly: a source key neither used nor dropped by name, a missing
target key or a shape mismatch is an error that lists them. To add a format, write a module like
princeton_hourglass.py (shared helpers: common.py, resnet_maps.py) and add it to CONVERTERS.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Set, Tuple

import numpy as np

from lib.convert import (fluid_pose_resnet, hrnet_pose_resnet, mmpose_hourglass, mmpose_pose_resnet,
                         paddlepose_hourglass, princeton_hourglass, tf_simplehumanpose, torchvision_resnet)
from lib.convert.common import State, listing
from lib.utils.errors import BadValue


@dataclass(frozen=True)
class Converter:
    description: str
    convert: Callable[[State], Tuple[State, Set[str]]]
    model_spec: Callable[[State], Tuple[str, Dict[str, object]]]  # -> (MODELS name, builder kwargs)
    dropped_unused: Callable[[State], Dict[str, str]]            # -> {source key: why it is dropped}
    conventions: Dict[str, dict] = field(default_factory=dict)   # config.json sections: 'data', 'test'
    backbone_only: bool = False     # fills conv1/bn1/layer* of pose_resnet only (--pretrained_backbone)
    # How the source is read (lib/convert/readers.py): 'torch' (.pth / .pt), 'pdparams' (a Paddle state
    # dict), 'fluid' (a persistables directory) or 'tf' (a TF checkpoint prefix).
    reader: str = 'torch'
    # (source state, source path) -> config.json sections, when they depend on the file (input size,
    # dataset); else `conventions`.
    conventions_for: Optional[Callable[[State, str], Dict[str, dict]]] = None

    def conventions_of(self, source: State, source_path: str) -> Dict[str, dict]:
        return self.conventions_for(source, source_path) if self.conventions_for else self.conventions


def _converter(module, description: str, backbone_only: bool = False, reader: str = 'torch') -> Converter:
    return Converter(description, module.convert, module.model_spec, module.dropped_unused, module.CONVENTIONS,
                     backbone_only, reader, getattr(module, 'conventions_for', None))


CONVERTERS: Dict[str, Converter] = {
    'princeton_hourglass': _converter(
        princeton_hourglass, "princeton-vl/pytorch_stacked_hourglass checkpoint.pt (PoseNet) -> 'hourglass'"),
    'mmpose_hourglass': _converter(
        mmpose_hourglass, "MMPose 0.x/1.x hourglass52 / hourglass104 .pth -> 'hourglass52' / 'hourglass104'"),
    'mmpose_pose_resnet': _converter(
        mmpose_pose_resnet, "MMPose 0.x/1.x SimpleBaseline res50/101/152 .pth -> 'pose_resnet_<depth>'"),
    'hrnet_pose_resnet': _converter(
        hrnet_pose_resnet, "HRNet repo pose_resnet_<depth>_*.pth (bare state dict) -> 'pose_resnet_<depth>'"),
    'torchvision_resnet': _converter(
        torchvision_resnet, "torchvision ImageNet resnet<depth>-*.pth -> backbone of 'pose_resnet_<depth>' "
        '(for --pretrained_backbone)', backbone_only=True),
    'paddlepose_hourglass52': _converter(
        paddlepose_hourglass, "txyugood/PaddlePose <size>_best_model/model.pdparams (AI Studio Hourglass-52) -> "
        "'hourglass52'", reader='pdparams'),
    'fluid_pose_resnet': _converter(
        fluid_pose_resnet, 'PaddlePaddle/models Fluid SimpleBaselines persistables directory (pose-resnet50-*) -> '
        "'pose_resnet_<depth>'", reader='fluid'),
    'tf_simplehumanpose': _converter(
        tf_simplehumanpose, "mks0601/TF-SimpleHumanPose checkpoint prefix (snapshot_<epoch>.ckpt) -> "
        "'pose_resnet_<depth>' (needs tensorflow)", reader='tf'),
}


@dataclass
class Conversion:
    model: object                   # our paddle.nn.Layer, built from the inferred kwargs, weights loaded
    model_name: str
    model_kwargs: Dict[str, object]
    state: State                    # target name -> float32 array (the backbone only if backbone_only)
    used: Set[str]                  # source keys carried into `state`
    dropped: Dict[str, str]         # source keys left out on purpose -> reason
    conventions: Dict[str, dict]
    backbone_only: bool = False

    def weights(self) -> dict:
        """What to save: the model's state, or only its converted backbone tensors."""
        state = self.model.state_dict()
        return {k: state[k] for k in self.state} if self.backbone_only else state


def get_converter(fmt: str) -> Converter:
    if fmt not in CONVERTERS:
        raise BadValue(f'unknown source format {fmt!r}; choose one of {sorted(CONVERTERS)}.')
    return CONVERTERS[fmt]


def map_state(fmt: str, source: State, source_name: str) -> Tuple[State, Set[str], Dict[str, str]]:
    """(target state, source keys used, source keys dropped -> reason) of `source` in format `fmt`.

    Raises ValueError naming every source key that is neither mapped nor dropped by name.
    """
    converter = get_converter(fmt)
    dropped = converter.dropped_unused(source)
    target, used = converter.convert(source)
    if used & set(dropped):
        raise RuntimeError(f'converter {fmt!r} both uses and drops {listing(used & set(dropped))}; fix its key map.')
    leftover = set(source) - used - set(dropped)
    if leftover:
        raise BadValue(f'{source_name}: {len(leftover)} source keys are not used by the {fmt!r} conversion and not '
                       f'known to be unused: {listing(leftover)}. Expected only the keys of the reference model; '
                       'pass the unmodified checkpoint, or extend lib/convert if the source model really has them.')
    return target, used, dropped


def convert_state(fmt: str, source: State, source_name: str) -> Conversion:
    """Convert `source` (key -> array, wrapper prefixes already stripped), build our model and load it.

    Raises ValueError naming every source key that is neither mapped nor dropped by name, and (through
    check_state_dict, or check_backbone for a backbone_only format) every missing, unexpected or
    mis-shaped parameter of our model.
    """
    # Paddle is imported here so that listing a checkpoint does not pay for it.
    from lib.models import build_model
    from lib.utils.checkpoint import check_state_dict

    converter = get_converter(fmt)
    model_name, kwargs = converter.model_spec(source)
    target, used, dropped = map_state(fmt, source, source_name)
    model = build_model(model_name, **kwargs)
    if converter.backbone_only:
        from lib.models.pretrained import set_backbone
        set_backbone(model, target, f'{source_name} (converted from {fmt})')
    else:
        check_state_dict(model, target, f'{source_name} (converted from {fmt})')
        model.set_state_dict(target)
    loaded = model.state_dict()
    differ = [k for k, v in target.items() if not np.array_equal(loaded[k].numpy(), v)]
    if differ:
        raise RuntimeError(f'set_state_dict left {len(differ)} parameters different from the converted values: '
                           f'{listing(differ)}.')
    return Conversion(model, model_name, kwargs, target, used, dropped,
                      converter.conventions_of(source, source_name), converter.backbone_only)
