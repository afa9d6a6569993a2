"""Run configuration: frozen dataclasses built once in main() and passed down in pieces, and the one
resolution of a run's configuration (resolve_config), which every entry script and tool calls:

    preset of (dataset, model, input size)   configs/<dataset>/<model>.yaml over the dataclass defaults, at the
                                             input size by the SIZE RULE below
    <- run config                            the configuration that goes with the weights
                                             (lib/inference/conventions.weights_config), or the run being resumed
    <- config file                           --config FILE (YAML, or a config.json)
    <- flags                                 --image_size, --lr, ... (only those given; lib/cli.py)
    <- --set key.sub=value                   typed overrides, checked against the dataclass fields

The resolved TrainConfig remembers which layer gave each value (TrainConfig.source_of), so that an error
about a value names where to change it.
"""
import argparse
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional, Sequence, Tuple

import yaml

from lib.utils.files import read_json
from lib.utils.errors import BadType, BadValue, MissingFile

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DECODERS = ('quarter', 'dark')   # test.decode: HRNet's quarter-pixel shift (the paper's), DARK's Taylor step


@dataclass(frozen=True)
class DataConfig:
    dataset_root: str
    dataset: str = 'mpii'           # 'mpii' (HRNet JSON layout) or 'coco' (person_keypoints_*.json)
    train_set: str = 'train'
    valid_set: str = 'valid'
    input_wh: Tuple[int, int] = (256, 256)
    heatmap_wh: Tuple[int, int] = (64, 64)
    sigma: float = 2.0
    # HRNet's MPII augmentation (SPEC C.2): scale x clip(N*sf+1, 1-sf, 1+sf), rotation clip(N*rf, +-2rf) w.p. 0.6
    scale_factor: float = 0.25
    rotation_factor: float = 30.0
    rotation_prob: float = 0.6
    flip: bool = True
    # HRNet's half-body crop (SPEC C.4): tried w.p. prob_half_body when more than num_joints_half_body joints
    # are annotated; <= 0 = never (MPII; HRNet's COCO HRNet yamls use 0.3, its pose_resnet yamls 0).
    prob_half_body: float = 0.0
    num_joints_half_body: int = 8
    use_joints_weight: bool = False   # HRNet LOSS.USE_DIFFERENT_JOINTS_WEIGHT: COCO's joint weights (SPEC C.5)
    color_rgb: bool = True
    mean: Tuple[float, float, float] = IMAGENET_MEAN   # applied to [0, 1] pixels in channel order
    std: Tuple[float, float, float] = IMAGENET_STD
    reduced_decode: bool = False    # decode JPEGs at 1/2, 1/4, 1/8 when the crop is that much larger than input_wh
    # Beyond the paper (lib/datasets/codec.py, README "DARK and UDP"): UDP's crop, targets and decoding (training
    # and test alike: travels with the weights), or DARK's unbiased targets (training only).
    udp: bool = False
    unbiased_encoding: bool = False


@dataclass(frozen=True)
class ModelConfig:
    name: str = 'hourglass'
    num_stacks: int = 0             # Newell's hourglass only; 0 = the builder's default
    num_features: int = 0           # Newell's hourglass only; 0 = the builder's default
    num_joints: int = 16

    @property
    def label(self) -> str:
        """Short name for tables and run folders: hourglass8, hourglass52, pose_resnet_50."""
        return f'{self.name}{self.num_stacks or ""}' if self.name == 'hourglass' else self.name


@dataclass(frozen=True)
class TestConfig:
    flip_test: bool = True
    shift_heatmap: bool = True      # HRNet TEST.SHIFT_HEATMAP (SPEC D.3)
    post_process: bool = True       # quarter-pixel refinement (SPEC D.2)
    decode_offset: float = 0.0      # heatmap pixels added when decoding; 0.5 for princeton-vl's weights
    decode: str = 'quarter'         # 'quarter' (HRNet, the paper's) or 'dark' (DARK's Taylor step); data.udp: DARK-UDP
    blur_kernel: int = 0            # DARK's modulation kernel; 0 = from data.sigma (11 for 2, 17 for 3)
    batch_size: int = 32
    # COCO only (HRNet's TEST section, SPEC H.2-H.3): boxes and post-processing of the evaluation.
    use_gt_bbox: bool = True        # ground-truth boxes (HRNet USE_GT_BBOX, validation during training)
    det_file: str = ''              # person detections [{image_id, category_id, bbox, score}] when not use_gt_bbox
    image_thre: float = 0.0         # keep detected boxes with score >= this (HRNet's yamls: 0.0)
    in_vis_thre: float = 0.2        # rescoring: mean of the joint maxvals above this, x box score
    oks_thre: float = 0.9           # OKS-NMS threshold per image


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output_dir: str = 'output'
    epochs: int = 140
    batch_size: int = 16
    optimizer: str = 'rmsprop'
    lr: float = 2.5e-4
    lr_steps: Tuple[int, ...] = (90, 120)
    lr_gamma: float = 0.1
    warmup_iters: int = 0           # linear warm-up from lr x warmup_ratio (MMPose: 500 iterations)
    warmup_ratio: float = 0.001
    weight_decay: float = 0.0
    pretrained_backbone: str = ''  # ImageNet weights for pose_resnet's ResNet ('' = from scratch)
    init_weights: str = ''          # the whole model's starting weights, a .pdparams of this model ('' = its init)
    amp: str = 'off'                # 'off', 'fp16' (with a GradScaler) or 'bf16'
    amp_level: str = 'O1'
    max_nonfinite: int = 20
    debug_images: Tuple[str, ...] = ()   # any of 'gt', 'pred', 'hm_gt', 'hm_pred' (--save_* flags)
    use_vdl: bool = False           # VisualDL scalars in <run>/vdl
    stack_loss: str = 'sum'
    workers: int = 4
    seed: int = 0
    max_iters: int = 0              # 0 = no limit
    eval_every: int = 1
    log_every: int = 50
    log_seconds: float = 60.0      # ... or a line after this many seconds, whichever comes first
    device: str = 'auto'
    deterministic: bool = False     # cuDNN's deterministic algorithms (lib/utils/device.use_deterministic_kernels)

    def source_of(self, key: str) -> str:
        """Where resolve_config took the dotted `key` from: 'the flags', '--set', a --config file, the run
        config's label (e.g. its config.json) or the preset file; 'the configuration' for a config that
        resolve_config did not make (dataclasses.replace makes a new one, which forgets the sources)."""
        return getattr(self, '_sources', {}).get(key, 'the configuration')


def parse_image_size(text) -> Tuple[int, int]:
    """'256' -> (256, 256); '256x192' (HRNet's naming: height x width) -> input_wh (192, 256)."""
    parts = str(text).lower().split('x')
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) <= 0:
        raise BadValue(f'image size {text!r} is not a side or HEIGHTxWIDTH; use e.g. 256 (square) or 256x192 '
                       '(256 high, 192 wide, as HRNet names its COCO inputs).')
    height, width = (sides[0], sides[0]) if len(sides) == 1 else sides
    return width, height


def image_size_arg(text: str) -> Tuple[int, int]:
    """argparse type of --image_size: parse_image_size with argparse's error."""
    try:
        return parse_image_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def size_name(input_wh) -> str:
    """HRNet's name of an input size: height x width, e.g. 256x192."""
    return f'{input_wh[1]}x{input_wh[0]}'


# ------------------------------------------------------------------------------------------- files

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
DATASETS = ('mpii', 'coco')
# Keys a config.json may hold beside the dataclass fields (tools/convert_weights.py notes its source).
METADATA_KEYS = ('converted_from',)

def read_config_file(path: str) -> dict:
    """The configuration tree in a YAML file (configs/*.yaml, --print_config) or a config.json."""
    what = 'a configuration tree (sections data, model, test and the training fields), as in configs/'
    if path.endswith('.json'):
        return read_json(path, what, expect=dict)
    if not os.path.isfile(path):
        raise MissingFile(f'config file {path} does not exist; expected a YAML file such as '
                          f'{os.path.join(CONFIG_DIR, "mpii", "hourglass.yaml")}.')
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise BadValue(f'{path} is not valid YAML ({error}); expected {what}.') from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadValue(f'{path} holds a YAML {type(values).__name__}; expected {what}.')
    return values


def dump_yaml(values: dict) -> str:
    """YAML of a configuration tree (to_dict), lists in flow style: the format of configs/*.yaml."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(value) if isinstance(value, tuple) else value
    return yaml.dump(plain(values), Dumper=_FlowListDumper, sort_keys=False, width=120)


class _FlowListDumper(yaml.SafeDumper):
    """Sections in block style, lists ([192, 256]) in flow style."""


_FlowListDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence('tag:yaml.org,2002:seq', value, flow_style=True))


def preset_names(dataset: str = 'mpii') -> Tuple[str, ...]:
    """The models with a preset file on `dataset`: the choices of --model."""
    if dataset not in DATASETS:
        raise BadValue(f'unknown dataset {dataset!r}; choose one of {list(DATASETS)}.')
    folder = os.path.join(CONFIG_DIR, dataset)
    return tuple(sorted(name[:-len('.yaml')] for name in os.listdir(folder) if name.endswith('.yaml')))


def preset_path(dataset: str, model: str) -> str:
    names = preset_names(dataset)
    if model not in names:
        raise BadValue(f'no {dataset} preset for model {model!r}; presets exist for {list(names)} '
                       f'(files in {os.path.join(CONFIG_DIR, dataset)}).')
    return os.path.join(CONFIG_DIR, dataset, f'{model}.yaml')


# SIZE RULE: a preset file holds its recipe at the default input size; another input size keeps the recipe,
# with heatmaps a quarter of the input and, where the references change them with the size, their sigma and
# batch size for it. Keyed by the input height.
SIZE_SIGMA = {'coco': {384: 3.0}}      # HRNet's 384x288 and MMPose's 384x384 COCO configs
SIZE_BATCH = {('mpii', 'hourglass52'): {384: 32},    # MMPose td-hm_hourglass52_8xb32-210e_mpii-384x384 (8xb64
              ('mpii', 'hourglass104'): {384: 32}}   # at 256x256); hourglass104 has hourglass52's recipe


def heatmap_wh_of(input_wh) -> Tuple[int, int]:
    """The SIZE RULE's heatmaps: a quarter of the input (width, height)."""
    return input_wh[0] // 4, input_wh[1] // 4


def sized(config: 'TrainConfig', input_wh) -> 'TrainConfig':
    """The SIZE RULE: `config` (a preset) at input_wh (width, height): heatmaps a quarter of it, and the
    dataset's sigma and the model's batch size for that input height where the references change them."""
    wh, data = tuple(input_wh), config.data
    data = dataclasses.replace(data, input_wh=wh, heatmap_wh=heatmap_wh_of(wh),
                               sigma=SIZE_SIGMA.get(data.dataset, {}).get(wh[1], data.sigma))
    batch = SIZE_BATCH.get((data.dataset, config.model.name), {}).get(wh[1], config.batch_size)
    return dataclasses.replace(config, data=data, batch_size=batch)


def _heatmaps_follow_input(layer: dict) -> dict:
    """A layer that sets data.input_wh without data.heatmap_wh also sets the SIZE RULE's heatmaps, so that
    --image_size over a run config of another size moves the heatmaps with it."""
    data = layer.get('data') or {}
    if 'input_wh' in data and 'heatmap_wh' not in data:
        layer['data'] = {**data, 'heatmap_wh': heatmap_wh_of(data['input_wh'])}
    return layer


def load_preset(dataset: str = 'mpii', model: str = 'hourglass', input_wh=None) -> 'TrainConfig':
    """The preset of (dataset, model, input size): configs/<dataset>/<model>.yaml over the dataclass defaults
    (a preset file holds only what its recipe changes), by the SIZE RULE at input_wh, else at its own size."""
    path = preset_path(dataset, model)
    config = _apply(TrainConfig(data=DataConfig(dataset_root='')), _typed(read_config_file(path), path))
    return sized(config, config.data.input_wh if input_wh is None else input_wh)


# ----------------------------------------------------------------------------------- typed layers

def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if args and args[-1] is Ellipsis:
            return f'a list of {args[0].__name__}'
        return f'a list of {len(args)} {args[0].__name__}s' if len(set(args)) == 1 else f'a list {args}'
    return tp.__name__


def _coerce(value, tp, key: str, source: str):
    """`value` (from YAML/JSON, or a --set string) as the field type `tp`; a TypeError names the field."""
    received = value

    def fail():
        raise BadType(f'{key}={received!r} (from {source}) is not {_describe(tp)}; expected {_describe(tp)}, '
                      f'e.g. {_example(tp)}.')
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip().strip('[]()').strip()
            value = [part.strip() for part in text.split(',')] if text else []
        if not isinstance(value, (list, tuple)):
            fail()
        types = [args[0]] * len(value) if args and args[-1] is Ellipsis else list(args)
        if len(types) != len(value):
            fail()
        try:
            return tuple(_coerce(v, t, key, source) for v, t in zip(value, types))
        except TypeError:
            fail()
    if tp is bool:
        if isinstance(value, bool):
            return value
        words = {'true': True, 'yes': True, 'on': True, '1': True, 'false': False, 'no': False, 'off': False,
                 '0': False}
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        fail()
    if tp in (int, float):
        if isinstance(value, bool):
            fail()
        if isinstance(value, str):
            try:
                value = tp(value.strip())
            except ValueError:
                fail()
        if isinstance(value, int) or (tp is float and isinstance(value, float)):
            return tp(value)
        fail()
    if tp is str:
        if isinstance(value, str):
            return value
        fail()
    return value


def _example(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        one = {int: '2', float: '0.5', str: 'a'}[args[0]]
        return f'{one},{one}' if args[-1] is Ellipsis or len(args) == 2 else ','.join([one] * len(args))
    return {bool: 'true', int: '3', float: '0.5', str: 'text'}.get(tp, '...')


def _field_types(cls) -> Dict[str, object]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def key_type(key: str):
    """The field type of a dotted key: float for 'data.sigma'."""
    cls = TrainConfig
    for part in key.split('.'):
        tp = _field_types(cls)[part]
        cls = tp
    return tp


def valid_keys(cls=None, prefix: str = '') -> Tuple[str, ...]:
    """Every dotted key of the configuration tree: data.sigma, model.name, lr, ..."""
    keys = []
    for name, tp in _field_types(cls or TrainConfig).items():
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            keys += valid_keys(tp, f'{prefix}{name}.')
        else:
            keys.append(prefix + name)
    return tuple(keys)


def _typed(values: dict, source: str, cls=None, prefix: str = '', strict: bool = True) -> dict:
    """`values` (a nested dict) checked and converted against the fields of `cls` (TrainConfig)."""
    cls = cls or TrainConfig
    types, typed = _field_types(cls), {}
    for name, value in values.items():
        key = prefix + name
        if name not in types:
            if not strict or (not prefix and name in METADATA_KEYS):
                continue
            section = f'section {prefix[:-1]}' if prefix else 'the configuration'
            raise BadValue(f'unknown config key {key!r} (from {source}); {section} has the keys '
                           f'{[prefix + k for k in types]}. See --print_config for the whole tree.')
        tp = types[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise BadType(f'{key} (from {source}) is a section, received {value!r}; set its fields, '
                              f'e.g. {key}.{dataclasses.fields(tp)[0].name}=...')
            typed[name] = _typed(value, source, tp, key + '.', strict)
        else:
            typed[name] = _coerce(value, tp, key, source)
    return typed


def unflatten(flat: Dict[str, object]) -> dict:
    """{'data.sigma': 3} -> {'data': {'sigma': 3}}; None values (flags not given) are left out."""
    tree: dict = {}
    for key, value in flat.items():
        if value is None:
            continue
        node, parts = tree, key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BadValue(f'config key {key!r} goes through {part!r}, which is not a section.')
        node[parts[-1]] = value
    return tree


def parse_sets(items: Iterable[str]) -> dict:
    """--set values, 'key.sub=value' each, as a nested dict of strings (typed by _typed)."""
    flat = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise BadValue(f'--set {item!r} is not key=value; expected e.g. --set data.sigma=3 lr=5e-4 '
                           f'(keys: {", ".join(valid_keys())}).')
        flat[key.strip()] = value
    return unflatten(flat)


def _merge(*parts: dict) -> dict:
    merged: dict = {}
    for part in parts:
        for key, value in part.items():
            merged[key] = _merge(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


def _apply(config, values: dict):
    """`config` (a dataclass) with the typed nested `values` replaced."""
    changes = {}
    for name, value in values.items():
        current = getattr(config, name)
        changes[name] = _apply(current, value) if dataclasses.is_dataclass(current) else value
    return dataclasses.replace(config, **changes)


def resolve_config(flags: Optional[Dict[str, object]] = None, run_config: Optional[dict] = None,
                   config_file: Optional[str] = None, sets: Sequence[str] = (),
                   run_source: str = 'the run config') -> 'TrainConfig':
    """The one resolution of a run's configuration, used by train.py (new and resumed runs), val.py,
    infer.py, export.py and the tools. Later layers win:

        preset of (dataset, model, input size) <- run_config <- config_file <- flags <- sets

    flags: {'data.sigma': 3.0, ...} (lib/cli.flag_values), None values are flags not given. run_config: a
    config.json's tree (unknown keys of older versions are skipped), labelled by its `source` attribute when it
    has one (lib/inference/conventions.weights_config), else by run_source. sets: 'key.sub=value' strings,
    type-checked. The dataset, model and input size of the preset are the last layer's that names them
    (default mpii, hourglass and the preset's own size). The result remembers the layer of every value
    (TrainConfig.source_of)."""
    run_source = getattr(run_config, 'source', None) or run_source
    layers = [_typed(run_config or {}, run_source, strict=False)]
    if config_file:
        layers.append(_typed(read_config_file(config_file), config_file))
    layers.append(_typed(unflatten(flags or {}), 'the flags'))
    layers.append(_typed(parse_sets(sets), '--set'))
    layers = [_heatmaps_follow_input(layer) for layer in layers]
    sources = [run_source, config_file, 'the flags', '--set'] if config_file else [run_source, 'the flags', '--set']
    merged = _merge(*layers)
    data, model = merged.get('data', {}), merged.get('model', {})
    dataset, name = data.get('dataset', 'mpii'), model.get('name', 'hourglass')
    if dataset in DATASETS and name not in preset_names(dataset):
        raise BadValue(f'no {dataset} preset for model {name!r}; presets exist for {list(preset_names(dataset))} '
                       f'(files in {os.path.join(CONFIG_DIR, dataset)}). model.name came from '
                       f'{_source_of("model.name", layers, sources)}: fix it there, or pass --model.')
    preset = load_preset(dataset, name, data.get('input_wh'))
    config = _apply(preset, merged)
    preset_file = preset_path(dataset, name)
    # Not a field: to_dict, ==, and dataclasses.replace (a new config) do not carry it.
    object.__setattr__(config, '_sources', {key: _source_of(key, layers, sources, preset_file)
                                            for key in valid_keys()})
    check_values(config)
    return config


_MISSING = object()


def _source_of(key: str, layers: Sequence[dict], sources: Sequence[str], preset: str = 'the preset') -> str:
    """Which layer gave the dotted `key` its value: the last one that holds it, else the preset file."""
    for layer, source in reversed(list(zip(layers, sources))):
        node = layer
        for part in key.split('.'):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            return source
    return preset


def _finite(value) -> bool:
    return all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,)))


# key -> (the values it accepts, as words; the test). A value outside them would fail later, deep in a run
# (a zero std divides by zero, a zero eval_every divides, a negative sigma makes no target).
VALUE_RULES = {
    'data.input_wh': ('two sizes > 0 (width, height)', lambda v: min(v) > 0),
    'data.heatmap_wh': ('two sizes > 0 (width, height)', lambda v: min(v) > 0),
    'data.sigma': ('a finite number > 0 (heatmap pixels)', lambda v: _finite(v) and v > 0),
    'data.mean': ('three finite numbers', _finite),
    'data.std': ('three finite numbers, none 0', lambda v: _finite(v) and all(x != 0 for x in v)),
    'data.scale_factor': ('a finite number >= 0', lambda v: _finite(v) and v >= 0),
    'data.rotation_factor': ('a finite number >= 0 (degrees)', lambda v: _finite(v) and v >= 0),
    'data.rotation_prob': ('a probability in [0, 1]', lambda v: 0 <= v <= 1),
    'data.prob_half_body': ('a probability <= 1 (<= 0: never)', lambda v: _finite(v) and v <= 1),
    'model.num_stacks': ('an integer >= 0 (0 = the default)', lambda v: v >= 0),
    'model.num_features': ('an integer >= 0 (0 = the default)', lambda v: v >= 0),
    'model.num_joints': ('an integer >= 1', lambda v: v >= 1),
    'test.batch_size': ('an integer >= 1', lambda v: v >= 1),
    'test.decode_offset': ('a finite number', _finite),
    'test.decode': (f'one of {list(DECODERS)}', lambda v: v in DECODERS),
    'test.blur_kernel': ('0 (from data.sigma) or an odd kernel size >= 3', lambda v: v == 0 or (v >= 3 and v % 2 == 1)),
    'test.image_thre': ('a finite number', _finite),
    'test.in_vis_thre': ('a finite number', _finite),
    'test.oks_thre': ('a threshold in [0, 1]', lambda v: 0 <= v <= 1),
    'epochs': ('an integer >= 1', lambda v: v >= 1),
    'batch_size': ('an integer >= 1', lambda v: v >= 1),
    'lr': ('a finite number > 0', lambda v: _finite(v) and v > 0),
    'lr_steps': ('epochs >= 0', lambda v: all(x >= 0 for x in v)),
    'lr_gamma': ('a finite number > 0', lambda v: _finite(v) and v > 0),
    'warmup_iters': ('an integer >= 0', lambda v: v >= 0),
    'warmup_ratio': ('a finite number >= 0', lambda v: _finite(v) and v >= 0),
    'weight_decay': ('a finite number >= 0', lambda v: _finite(v) and v >= 0),
    'max_nonfinite': ('an integer >= 0', lambda v: v >= 0),
    'workers': ('an integer >= 0 (0 = load in the main process)', lambda v: v >= 0),
    'seed': ('an integer in [0, 2**32)', lambda v: 0 <= v < 2 ** 32),
    'max_iters': ('an integer >= 0 (0 = no limit)', lambda v: v >= 0),
    'eval_every': ('an integer >= 1', lambda v: v >= 1),
    'log_every': ('an integer >= 1', lambda v: v >= 1),
    'log_seconds': ('a finite number >= 0 (seconds; 0: a line at every iteration)', lambda v: _finite(v) and v >= 0),
}


def check_values(config: 'TrainConfig') -> None:
    """ValueError naming the first value of `config` outside VALUE_RULES, where it came from
    (config.source_of) and what is expected."""
    for key, (expected, test) in VALUE_RULES.items():
        value = config
        for part in key.split('.'):
            value = getattr(value, part)
        if not test(value):
            shown = list(value) if isinstance(value, tuple) else value
            raise BadValue(f'{key}={shown!r} (from {config.source_of(key)}) is out of range; expected {expected}. '
                           f'Change it there, or with --set {key}=<value>.')
    if config.data.udp and config.data.unbiased_encoding:
        raise BadValue(f'data.udp (from {config.source_of("data.udp")}) and data.unbiased_encoding (from '
                       f'{config.source_of("data.unbiased_encoding")}) are both on; they are two different targets '
                       "(UDP's already centres the Gaussian at the exact position). Choose one: drop "
                       '--unbiased_encoding or --udp.')


def preset_config(model_name: str, dataset_root: str, dataset: str = 'mpii',
                  input_wh: Optional[Tuple[int, int]] = None) -> TrainConfig:
    """The preset of (dataset, model, input size) with its data at dataset_root (load_preset)."""
    preset = load_preset(dataset, model_name, input_wh)
    return dataclasses.replace(preset, data=dataclasses.replace(preset.data, dataset_root=dataset_root))


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
