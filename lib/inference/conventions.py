"""Which network and which input conventions a set of weights expects.

Conventions travel with the weights: train.py writes config.json (to_dict(TrainConfig): model, data, test)
in the run folder, tools/convert_weights.py writes one beside converted weights, and an exported model
keeps the same sections in <model_dir>/inference.json. They are resolved as every run's configuration is,
by lib/config.resolve_config: the preset of (dataset, model) <- those sections <- the overrides.
"""
import os
from typing import NamedTuple, Optional

from lib.config import (DataConfig, ModelConfig, TestConfig, find_run_config, resolve_config, run_config_for,
                        weight_conventions)
from lib.utils.files import read_json
from lib.utils.errors import BadValue, MissingFile

# Keys of `overrides` and the config keys they set; None (or a missing key) keeps the saved value. The
# flip_test, shift_heatmap and post_process flags override in both directions.
OVERRIDE_KEYS = {'model': 'model.name', 'image_size': 'data.input_wh', 'num_stacks': 'model.num_stacks',
                 'num_features': 'model.num_features', 'flip_test': 'test.flip_test',
                 'shift_heatmap': 'test.shift_heatmap', 'post_process': 'test.post_process', 'decode': 'test.decode',
                 'batch_size': 'test.batch_size', 'dataset_root': 'data.dataset_root', 'valid_set': 'data.valid_set'}
EXPORTED_CONFIG_NAME = 'inference.json'
__all__ = ['Conventions', 'EXPORTED_CONFIG_NAME', 'OVERRIDE_KEYS', 'conventions_for_model_dir',
           'conventions_for_weights', 'conventions_from_config', 'find_run_config', 'run_config_for',
           'saved_config_for']


class Conventions(NamedTuple):
    """(model, data, test): unpacks like the plain tuple conventions_for_weights promises."""
    model: ModelConfig
    data: DataConfig
    test: TestConfig


def conventions_from_config(saved: dict, overrides: Optional[dict] = None, source: str = 'the saved config') \
        -> Conventions:
    """Conventions from a config.json's sections (model, data, test): the preset of its dataset and model <-
    the sections' conventions (lib/config.WEIGHT_CONVENTIONS) <- overrides. `saved` may be {} (the preset
    of overrides['model'] or hourglass). overrides: keys of OVERRIDE_KEYS; image_size is a side (square
    input, heatmaps a quarter of it) or a (width, height) pair."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise BadValue(f'unknown convention overrides {unknown}; valid keys: {list(OVERRIDE_KEYS)}.')
    size = overrides.get('image_size')
    if size is not None and not isinstance(size, (tuple, list)):
        overrides['image_size'] = (int(size), int(size))
    config = resolve_config({OVERRIDE_KEYS[k]: v for k, v in overrides.items()},
                            run_config=weight_conventions(saved), run_source=source)
    return Conventions(config.model, config.data, config.test)


def saved_config_for(weights: str) -> dict:
    """The config.json train.py left in the run folder of these weights; without one, the conventions of a
    foreign layout read as it is (PaddlePose .pdparams, a Fluid directory: lib/inference/foreign_weights.py),
    else {}."""
    from lib.inference.foreign_weights import foreign_config
    path = None if os.path.isdir(weights) else find_run_config(weights)
    return run_config_for(weights) if path else foreign_config(weights)


def conventions_for_weights(path: str, overrides: Optional[dict] = None) -> Conventions:
    """(ModelConfig, DataConfig, TestConfig) of weights: their config.json (folder or parent folder), or the
    conventions of a foreign layout, else the preset of overrides['model'] (default hourglass)."""
    return conventions_from_config(saved_config_for(path), overrides, find_run_config(path) or 'no config.json')


def conventions_for_model_dir(model_dir: str, overrides: Optional[dict] = None) -> Conventions:
    """Conventions of an exported model, from <model_dir>/inference.json (same sections as config.json)."""
    path = os.path.join(model_dir, EXPORTED_CONFIG_NAME)
    if not os.path.isfile(path):
        raise MissingFile(f'{path} not found: an exported model folder keeps its input conventions in '
                          f'{EXPORTED_CONFIG_NAME}. Pass the folder export.py wrote as --model_dir, or '
                          're-export the model.')
    return conventions_from_config(read_json(path, f'the {EXPORTED_CONFIG_NAME} export.py writes', expect=dict), overrides, path)
