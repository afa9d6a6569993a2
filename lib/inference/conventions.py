"""Which configuration goes with a set of weights: weights_config(path), the run config layer of
lib/config.resolve_config for val.py, infer.py, export.py and the tools.

Conventions travel with the weights: train.py writes config.json (to_dict(TrainConfig): model, data, test)
in the run folder, tools/convert_weights.py writes one beside converted weights, an exported model keeps the
same sections in <model_dir>/inference.json, and weights of a foreign layout read as they are (PaddlePose,
Fluid: lib/convert/loading.py) bring their project's. Of these, only what describes the network and its
input and test conventions travels (WEIGHT_CONVENTIONS), not where the training data was or how it was
augmented.
"""
import os
from typing import Optional

from lib.utils.errors import BadValue, MissingFile
from lib.utils.files import read_json

RUN_CONFIG_NAME = 'config.json'
EXPORTED_CONFIG_NAME = 'inference.json'
EXPORT_COMMAND = 'python export.py --pretrained_model <run>/best_model/model.pdparams --onnx --output_dir {dir}'
# The files of an exported folder (lib/inference/export.py writes them, lib/inference/exported.py reads them).
PADDLE_MODEL_FILES = ('model.json', 'model.pdmodel')   # Paddle 3.x (PIR) writes .json; the old IR .pdmodel
PADDLE_PARAMS_FILE = 'model.pdiparams'
ONNX_FILE = 'model.onnx'

# Sections (and keys; None = the whole section) that travel with weights: the network, its input and targets'
# geometry (data.udp: UDP's crop and decoding) and the whole test section (the decoder, test.decode, with it).
# The boxes a COCO evaluation uses belong to that evaluation, not to the weights; how the training targets
# were made (data.unbiased_encoding) does not change how the network is read.
WEIGHT_CONVENTIONS = {'model': ('name', 'num_stacks', 'num_features', 'num_joints'),
                      'data': ('dataset', 'input_wh', 'heatmap_wh', 'color_rgb', 'mean', 'std', 'sigma', 'udp'),
                      'test': None}
NOT_WITH_WEIGHTS = {'test': ('use_gt_bbox', 'det_file')}


class WeightsConfig(dict):
    """The configuration tree that goes with some weights, and `source`: where it was read (the label
    resolve_config gives its values in messages); '' for weights without one (the preset decides).
    inference_config: for an exported folder, its whole inference.json as read here (the exported backends
    take it from there, so that infer.py reads the file once)."""

    def __init__(self, tree: Optional[dict] = None, source: str = '', inference_config: Optional[dict] = None):
        super().__init__(tree or {})
        self.source = source
        self.inference_config = inference_config


def weight_conventions(saved: dict) -> dict:
    """The part of a config.json (or inference.json) that travels with its weights (WEIGHT_CONVENTIONS)."""
    kept = {}
    for section, keys in WEIGHT_CONVENTIONS.items():
        values = saved.get(section) or {}
        chosen = values if keys is None else {k: values[k] for k in keys if k in values}
        kept[section] = {k: v for k, v in chosen.items() if k not in NOT_WITH_WEIGHTS.get(section, ())}
    return kept


def find_run_config(weights: str) -> Optional[str]:
    """Path of the config.json in the folder of `weights` or its parent (train.py keeps best_model/ inside
    the run folder), or None."""
    folder = os.path.dirname(os.path.abspath(weights))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, RUN_CONFIG_NAME)
        if os.path.isfile(path):
            return path
    return None


def weights_config(path: Optional[str]) -> WeightsConfig:
    """The configuration that goes with the weights at `path`, for resolve_config's run_config:

    - an exported model folder: its inference.json (read_inference_config);
    - a file with a config.json in its folder or the parent folder (train.py's run, tools/convert_weights.py);
    - weights of a foreign layout read as they are (a PaddlePose .pdparams, a Fluid directory): that project's
      conventions (lib/convert/loading.foreign_config);
    - else (no path, or nothing known): an empty tree, and the preset decides."""
    if not path:
        return WeightsConfig()
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, EXPORTED_CONFIG_NAME)):
        saved = read_inference_config(path)
        return WeightsConfig(weight_conventions(saved), os.path.join(path, EXPORTED_CONFIG_NAME), saved)
    run_config = None if os.path.isdir(path) else find_run_config(path)
    if run_config:
        saved = read_json(run_config, 'the config.json that train.py or tools/convert_weights.py writes (sections '
                                      'model, data, test)', expect=dict)
        return WeightsConfig(weight_conventions(saved), run_config)
    from lib.convert.loading import foreign_config
    foreign = foreign_config(path)
    if not foreign:
        return WeightsConfig()
    return WeightsConfig(weight_conventions(foreign), f'the conventions of {foreign["converted_from"]["format"]} '
                                                      f'for {path}')


# ----------------------------------------------------------------------- the exported folder's inference.json

def expected_files(model_dir: str) -> str:
    return (f'{EXPORTED_CONFIG_NAME} (conventions), {PADDLE_MODEL_FILES[0]} + {PADDLE_PARAMS_FILE} (Paddle '
            f'Inference; {PADDLE_MODEL_FILES[1]} from the old IR) and {ONNX_FILE} (ONNX Runtime, export with --onnx). '
            f'Write them with: {EXPORT_COMMAND.format(dir=model_dir)}')


def read_inference_config(model_dir: str) -> dict:
    """The parsed <model_dir>/inference.json, its sections and file names checked (the one reader of it)."""
    path = os.path.join(model_dir, EXPORTED_CONFIG_NAME)
    if not os.path.isdir(model_dir):
        raise MissingFile(f'exported model folder not found: {model_dir}. Expected a folder holding '
                          + expected_files(model_dir))
    if not os.path.isfile(path):
        raise MissingFile(f'{path} not found; an exported model folder holds ' + expected_files(model_dir))
    values = read_json(path, 'the sections model, data and test', 're-export the model: '
                       + EXPORT_COMMAND.format(dir=model_dir), expect=dict)
    missing = [key for key in ('model', 'data', 'test') if not isinstance(values.get(key), dict)]
    if missing:
        raise BadValue(f'{path} lacks the section(s) {missing}; export.py writes model, data, test, num_joints '
                       'and files. Re-export the model: ' + EXPORT_COMMAND.format(dir=model_dir))
    check_file_names(values.get('files'), path)
    return values


def check_file_names(files, path: str) -> None:
    """The `files` of an inference.json ({kind: file name}) must name files inside its folder: a relative
    name without '..' (an absolute path or an escape would make the folder read files elsewhere)."""
    if files is None:
        return
    if not isinstance(files, dict):
        raise BadValue(f'{path}: "files" is {files!r}; expected a dict of kind -> file name in the folder, '
                       'e.g. {"paddle_params": "model.pdiparams"}. Re-export the model.')
    for kind, name in files.items():
        if name is None and kind == 'onnx':
            continue
        if not isinstance(name, str) or not name or os.path.isabs(name) or ':' in name or \
                '..' in name.replace('\\', '/').split('/'):
            raise BadValue(f'{path}: files.{kind} is {name!r}; expected the name of a file inside '
                           f'{os.path.dirname(path) or "."} (relative, no "..", e.g. "model.pdiparams"). '
                           'inference.json may only name files of its own folder: re-export the model, or '
                           'fix the name.')
