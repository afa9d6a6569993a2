"""The one strict loader of whole-model weights (load_weights): --pretrained_model in any layout val.py,
infer.py, export.py and the tools accept, loaded loudly.

- this repository's .pdparams (train.py's best_model/model.pdparams or checkpoint.pdparams,
  tools/convert_weights.py), read by lib/utils/checkpoint.load_file (no code runs), conventions from the
  config.json beside it (lib/inference/conventions.weights_config);
- txyugood/PaddlePose's hourglass52 model.pdparams and a PaddlePaddle/models Fluid SimpleBaselines
  persistables directory, as they are: recognised by their keys, renamed in memory by the converter of
  lib/convert, and evaluated with that project's conventions (foreign_config) when no config.json
  describes them;
- anything else that does not fit the model: an error naming the layout its keys look like and the
  command that converts it (lib/convert/detect.py), or that the layout is unknown.
"""
import os
import zipfile
from typing import Dict, Optional, Tuple

from lib.convert import detect
from lib.utils.errors import BadValue

# Which of val.py's MPII columns the number a project reported as "Mean@0.1" compares with.
METRIC_NOTES = {
    'paddlepose_hourglass52': 'PaddlePose\'s Mean@0.1 is the true 0.10 threshold: compare it with Mean@0.1.',
    'fluid_pose_resnet': 'The Fluid port\'s Mean@0.1 is HRNet\'s pckAll[11], the 0.11 threshold: compare it with '
                         'Mean@0.11 (COCO models: OKS AP).',
}
_cache: Dict[str, object] = {}      # the last file read: {'key': (path, mtime, size), 'value': ...}


def _stamp(path: str) -> Tuple[str, float, int]:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_mtime, stat.st_size


def _read_file(path: str):
    """load_file(path) (the one place a .pdparams is unpickled), kept for the next call on the same file:
    conventions and weights are read from one load."""
    from lib.utils.checkpoint import load_file
    key = _stamp(path) if os.path.isfile(path) else None
    if key is not None and _cache.get('key') == key:
        return _cache['value']
    value = load_file(path)
    _cache.clear()
    if key is not None:
        _cache.update(key=key, value=value)
    return value


def _state_of(obj) -> Tuple[dict, Optional[str]]:
    """(state dict, wrapper) of a loaded object: this repository's checkpoint keeps it under 'model',
    others under 'state_dict'."""
    if isinstance(obj, dict):
        for wrapper in ('model', 'state_dict'):
            if isinstance(obj.get(wrapper), dict):
                return obj[wrapper], wrapper
        return obj, None
    return {}, None


def direct_source(path: str) -> Optional[Tuple[str, dict]]:
    """(format, source state as numpy) when `path` is a layout read as it is (PaddlePose .pdparams, Fluid
    directory), else None."""
    from lib.convert import fluid_pose_resnet, paddlepose_hourglass
    if fluid_pose_resnet.is_persistables_dir(path):
        return 'fluid_pose_resnet', fluid_pose_resnet.read_persistables(path)
    if not os.path.isfile(path):
        return None
    state, _ = _state_of(_read_file(path))
    if paddlepose_hourglass.is_paddlepose(state):
        from lib.convert.readers import PADDLE_NAME_TABLE, as_numpy
        return 'paddlepose_hourglass52', as_numpy({k: v for k, v in state.items() if k != PADDLE_NAME_TABLE})
    return None


def foreign_config(path: str) -> dict:
    """config.json sections (model, data, test) of weights read as they are, from their project's
    conventions; {} for anything else (and for a file that cannot be read: loading reports that)."""
    try:
        found = direct_source(path)
    except (OSError, ValueError):
        return {}
    if found is None:
        return {}
    from lib.convert import get_converter
    fmt, source = found
    converter = get_converter(fmt)
    name, kwargs = converter.model_spec(source)
    return {'model': {'name': name, **kwargs}, **converter.conventions_of(source, path),
            'converted_from': {'format': fmt, 'source': os.path.abspath(path), 'in_memory': True}}


def _torch_file(path: str) -> bool:
    if path.endswith(('.pth', '.pt', '.pth.tar')):
        return True
    try:
        return zipfile.is_zipfile(path) and any(n.endswith('/data.pkl') for n in zipfile.ZipFile(path).namelist())
    except OSError:
        return False


def _tf_checkpoint(path: str) -> bool:
    from lib.convert.tf_simplehumanpose import is_tf_checkpoint_name
    return is_tf_checkpoint_name(path) or os.path.isfile(path + '.index')


def unreadable_answer(path: str) -> Optional[str]:
    """What a path that is not a Paddle weights file is, and what to run, or None."""
    if _tf_checkpoint(path):
        prefix = path
        for suffix in ('.index', '.meta'):
            prefix = prefix[:-len(suffix)] if prefix.endswith(suffix) else prefix
        return (f'{path} is a TensorFlow checkpoint ({detect.TF.project}). Convert it first (needs pip install '
                f'tensorflow-cpu): {detect.convert_command("tf_simplehumanpose", prefix.split(".data-")[0])}')
    if os.path.isfile(path) and _torch_file(path):
        formats = 'princeton_hourglass, mmpose_hourglass, mmpose_pose_resnet, hrnet_pose_resnet, torchvision_resnet'
        return (f'{path} is a PyTorch checkpoint, which Paddle cannot read. Convert it first (needs pip install '
                f'torch): python tools/convert_weights.py --format FORMAT --source {path} --output '
                f'weights/<name>/model.pdparams, with FORMAT one of {formats}; --list prints its keys.')
    if os.path.isdir(path):
        return (f'{path} is a directory without conv2d_0.w_0, so not a Fluid persistables directory; expected a '
                '.pdparams file, or the folder of a pose-resnet50-*.tar.gz (conv2d_0.w_0, batch_norm_0.w_0, ...).')
    return None


def _is_resumable(obj) -> bool:
    """train.py's checkpoint.pdparams: {'model', 'optimizer', 'lr_scheduler', 'train_state', 'config'}."""
    return isinstance(obj, dict) and isinstance(obj.get('model'), dict) and 'optimizer' in obj


def _explain_mismatch(obj, path: str) -> str:
    state, _ = _state_of(obj)
    if _is_resumable(obj):
        saved = (obj.get('config') or {}).get('model') or {}
        return (f'It is {detect.RESUMABLE.project} of the model {saved.get("name", "?")} '
                f'{ {k: v for k, v in saved.items() if k != "name" and v} }; its run folder\'s config.json '
                'describes it: keep the file there, or pass the matching --model / --num_stacks / --num_features.')
    if not state:
        return f'It holds no state dict (received a {type(obj).__name__}).'
    return detect.explain(list(state), path)


def load_weights(model, path: str) -> None:
    """Load `path` into `model` strictly: this repository's weights as they are, PaddlePose and Fluid weights
    renamed in memory; anything else that does not fit raises ValueError saying what the file looks like
    and the command that converts it."""
    from lib.utils.checkpoint import check_state_dict
    try:
        found = direct_source(path)
    except ValueError as error:
        answer = unreadable_answer(path)
        raise BadValue(answer if answer else str(error)) from None
    except FileNotFoundError:
        answer = unreadable_answer(path)
        if answer:
            raise BadValue(answer) from None
        raise
    if found is None and not os.path.isfile(path):
        answer = unreadable_answer(path)
        if answer:
            raise BadValue(answer)
    if found is not None:
        from lib.convert import map_state
        fmt, source = found
        state, _, _ = map_state(fmt, source, path)
        source_name = f'{path} ({detect.detect_layout(source).project}, renamed as --format {fmt})'
        print(f'Reading {source_name}: {len(state)} tensors, with that project\'s conventions unless a '
              f'config.json beside the file says otherwise. {METRIC_NOTES[fmt]}')
        obj = None
    else:
        obj = _read_file(path)
        state, source_name = _state_of(obj)[0], path
    try:
        check_state_dict(model, state, source_name)
    except ValueError as error:
        if found is not None:
            raise BadValue(f'{error}\nThe file was read as {fmt}; a config.json beside it that describes another '
                           'model overrides that project\'s conventions: move the file to a folder of its own.'
                           ) from None
        state_keys = list(_state_of(obj)[0])
        if detect.detect_layout(state_keys) is not None and not _is_resumable(obj):
            # a known foreign layout: the answer first, the key-by-key comparison after it
            raise BadValue(f'{path} does not hold weights of this repository\'s models. '
                           f'{detect.explain(state_keys, path)}\nDetails: {error}') from None
        raise BadValue(f'{error}\n{_explain_mismatch(obj, path)}') from None
    finally:
        _cache.clear()
    model.set_state_dict(state)
