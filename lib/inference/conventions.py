"""Which network and which input conventions a set of weights expects.

Conventions travel with the weights: train.py writes config.json (to_dict(TrainConfig): model, data, test)
in the run folder, tools/convert_weights.py writes one beside converted weights, and an exported model
keeps the same sections in <model_dir>/inference.json. A key missing there comes from the preset of the
model (PRESETS), as in val.py.
"""
import dataclasses
import json
import os
from typing import NamedTuple, Optional

from lib.config import DataConfig, ModelConfig, TestConfig, preset_config

# Keys of `overrides`; None (or a missing key) keeps the saved value. The flip_test, shift_heatmap and
# post_process flags override in both directions (val.py passes False for --no_*, None otherwise).
OVERRIDE_KEYS = ('model', 'image_size', 'num_stacks', 'num_features', 'flip_test', 'shift_heatmap',
                 'post_process', 'batch_size', 'dataset_root', 'valid_set')
EXPORTED_CONFIG_NAME = 'inference.json'


class Conventions(NamedTuple):
    """(model, data, test): unpacks like the plain tuple conventions_for_weights promises."""
    model: ModelConfig
    data: DataConfig
    test: TestConfig


def find_run_config(weights: str) -> Optional[str]:
    """Path of the config.json in the folder of `weights` or its parent (train.py keeps best_model/ inside
    the run folder), or None."""
    folder = os.path.dirname(os.path.abspath(weights))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, 'config.json')
        if os.path.isfile(path):
            return path
    return None


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            values = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON ({error}); expected the config.json that train.py or '
                         'tools/convert_weights.py writes (sections model, data, test).') from None
    if not isinstance(values, dict):
        raise ValueError(f'{path} holds a JSON {type(values).__name__}; expected an object with the sections '
                         'model, data and test.')
    return values


def run_config_for(weights: str) -> dict:
    """The config.json train.py left in the run folder of these weights; without one, the conventions of
    a foreign layout read as it is (PaddlePose .pdparams, a Fluid directory: lib/inference/foreign_weights.py),
    else {}."""
    from lib.inference.foreign_weights import foreign_config
    path = None if os.path.isdir(weights) else find_run_config(weights)
    return _read_json(path) if path else foreign_config(weights)


def _as_tuple(value):
    return tuple(value) if isinstance(value, list) else value


def conventions_from_config(saved: dict, overrides: Optional[dict] = None) -> Conventions:
    """Conventions from a config.json's sections (model, data, test), overrides first, then the saved
    values, then the preset of the model. `saved` may be {} (the preset of overrides['model'] or hourglass).

    overrides: keys of OVERRIDE_KEYS; image_size is a side (square input, heatmaps a quarter of it) or a
    (width, height) pair.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f'unknown convention overrides {unknown}; valid keys: {list(OVERRIDE_KEYS)}.')
    saved_model, saved_data, saved_test = (saved.get(key) or {} for key in ('model', 'data', 'test'))
    name = overrides.get('model', saved_model.get('name', 'hourglass'))
    preset = preset_config(name, overrides.get('dataset_root', saved_data.get('dataset_root', '')))
    model = ModelConfig(name=name,
                        num_stacks=overrides.get('num_stacks', saved_model.get('num_stacks', preset.model.num_stacks)),
                        num_features=overrides.get('num_features',
                                                   saved_model.get('num_features', preset.model.num_features)),
                        num_joints=saved_model.get('num_joints', preset.model.num_joints))

    if 'image_size' in overrides:
        size = overrides['image_size']
        input_wh = tuple(int(v) for v in size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        heatmap_wh = (input_wh[0] // 4, input_wh[1] // 4)
    else:
        input_wh = tuple(saved_data.get('input_wh', preset.data.input_wh))
        heatmap_wh = tuple(saved_data.get('heatmap_wh', (input_wh[0] // 4, input_wh[1] // 4)))
    # Input normalisation travels with the weights: a converted princeton-vl model takes RGB in [0, 1]
    # without mean/std, HRNet's pose_resnet BGR with the RGB ImageNet statistics.
    saved_conventions = {key: _as_tuple(saved_data[key]) for key in ('color_rgb', 'mean', 'std', 'sigma')
                         if key in saved_data}
    data = dataclasses.replace(preset.data, input_wh=input_wh, heatmap_wh=heatmap_wh, **saved_conventions,
                               **{k: overrides[k] for k in ('valid_set',) if k in overrides})

    defaults = TestConfig()
    test = TestConfig(**{f.name: overrides.get(f.name, saved_test.get(f.name, getattr(defaults, f.name)))
                         for f in dataclasses.fields(TestConfig)})
    return Conventions(model, data, test)


def conventions_for_weights(path: str, overrides: Optional[dict] = None) -> Conventions:
    """(ModelConfig, DataConfig, TestConfig) of a .pdparams: its config.json (folder or parent folder),
    else the preset of overrides['model'] (default hourglass)."""
    return conventions_from_config(run_config_for(path), overrides)


def conventions_for_model_dir(model_dir: str, overrides: Optional[dict] = None) -> Conventions:
    """Conventions of an exported model, from <model_dir>/inference.json (same sections as config.json)."""
    path = os.path.join(model_dir, EXPORTED_CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: an exported model folder keeps its input conventions in '
                                f'{EXPORTED_CONFIG_NAME}. Pass the folder export.py wrote as --model_dir, or '
                                're-export the model.')
    return conventions_from_config(_read_json(path), overrides)
