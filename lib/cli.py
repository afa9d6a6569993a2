"""The front door: every entry script and tool takes its configuration flags from the groups below, so that a
flag has one name, one config key and one meaning wherever it is accepted. Each script does the same three
steps:

    parser, preset = script_parser(__doc__, argv)         # --help's defaults: the preset argv chooses
    add_front_door(parser, GROUPS, preset)                # 1. its groups, and --config / --set / --print_config
    args = parser.parse_args(argv)
    config = resolve_config(flag_values(args, GROUPS),    # 2. their values (None: not given)
                            run_config=weights_config(path),   # 3. the configuration of the weights, if any
                            config_file=args.config, sets=args.set)
    if args.print_config:
        return print_config(config)

GROUPS is the script's tuple of FlagGroups: TRAINING_GROUPS for train.py (and tools/preflight.py),
(DATA, MODEL, TEST, BOXES, RUN) for val.py; `pick(GROUP, 'name', ...)` takes some rows of a group (infer.py
and export.py take only --image_size of DATA). A script's own extras (--input, --resume, --onnx, ...) are
plain add_argument calls that name no config key.

A new configuration flag is ONE row in the group of the scripts that need it, as --udp and --decode are:

    Flag('udp', 'data.udp', "UDP's unbiased crop, targets and decoding ...", STORE_TRUE),          # in DATA
    Flag('decode', 'test.decode', 'heatmap decoder: quarter ... or dark ...', {'choices': DECODERS}),  # in TEST

name (the flag without --), the dotted config key (a field of lib/config.py's dataclasses), the help text
(the default is appended from the chosen preset), and argparse keywords (default: the field's type). A flag
not given is None and changes nothing; a switch stores a constant (STORE_TRUE, STORE_FALSE for --no_* flags).
A flag may also set other keys when given (`implies`, e.g. --det_file turns test.use_gt_bbox off). Where a
row goes: what describes the data, the input and its targets (every script that reads data) in DATA; the
training set and its augmentation in TRAIN_DATA; the network in MODEL; how predictions are made and decoded
(validation, val.py, infer.py, export.py, tools/draw_predictions.py) in TEST; optimisation, run length,
logging, determinism, initial weights in TRAIN; device and loader workers in RUN.
"""
import argparse
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lib.config import (DATASETS, DECODERS, TrainConfig, dump_yaml, image_size_arg, key_type, load_preset,
                        preset_names, resolve_config, size_name, to_dict, valid_keys)
from lib.utils.errors import add_debug_argument
from lib.utils.threads import add_threads_argument

STORE_TRUE = {'action': 'store_const', 'const': True}
STORE_FALSE = {'action': 'store_const', 'const': False}


class Flag(NamedTuple):
    """A command-line flag --<name> that sets the config key `key`; its default is shown from the preset."""
    name: str
    key: str
    help: str
    kwargs: dict = {}
    implies: dict = {}      # {other key: value} set too when the flag is given


class FlagGroup(NamedTuple):
    """Flags shown together in --help under `title`."""
    title: str
    flags: Tuple[Flag, ...]


# ------------------------------------------------------------------------------------------------ the groups
# What the data is, how a person crop becomes the network's input and which targets it gets (train.py, val.py,
# the tools; infer.py and export.py take --image_size, which the weights' configuration gives otherwise).
DATA = FlagGroup('data', (
    Flag('dataset', 'data.dataset', 'mpii or coco (person keypoints); the presets are per dataset',
         {'choices': DATASETS}),
    Flag('dataset_root', 'data.dataset_root', 'MPII in the HRNet layout, or COCO with annotations/ and '
         'images/<set>/ or <set>/'),
    Flag('valid_set', 'data.valid_set', 'annotation set to validate on (MPII annot/<set>.json and '
         'annot/gt_<set>.mat, any name; COCO val2017)'),
    Flag('image_size', 'data.input_wh', 'input size: a side (256 = 256x256) or HEIGHTxWIDTH as HRNet names it '
         '(height x width: 256x192 is 192 wide); heatmaps are a quarter of it; multiples of 64 for hourglass, '
         '128 for hourglass52/104, 32 for pose_resnet', {'type': image_size_arg, 'metavar': 'SIZE'}),
    Flag('sigma', 'data.sigma', 'Gaussian target sigma in heatmap pixels (HRNet; COCO inputs 384 high: 3)'),
    Flag('udp', 'data.udp', "UDP's unbiased crop, targets and decoding (DARK-UDP; Huang et al., CVPR 2020); "
         'travels with the weights (README "DARK and UDP")', STORE_TRUE),
    Flag('unbiased_encoding', 'data.unbiased_encoding', "DARK's unbiased targets: the Gaussian at the exact "
         'sub-pixel joint position (MMPose MSRAHeatmap(unbiased=True)); training and val.py --oracle; pair with '
         '--decode dark', STORE_TRUE),
))
# The network. With weights, their configuration gives these; a flag overrides it.
MODEL = FlagGroup('model', (
    Flag('model', 'model.name', 'architecture, with its reference recipe on the dataset (configs/<dataset>/'
         '<model>.yaml)', {'choices': preset_names()}),
    Flag('num_stacks', 'model.num_stacks', 'hourglass stacks: 1, 2, 4 or 8 (hourglass only)'),
    Flag('num_features', 'model.num_features', 'hourglass width (hourglass only)'),
))
# How predictions are made: validation in train.py and val.py, infer.py, and what export.py records.
TEST = FlagGroup('test (validation and prediction)', (
    Flag('no_flip_test', 'test.flip_test', 'predict without the flip test (twice as fast)', STORE_FALSE),
    Flag('no_shift_heatmap', 'test.shift_heatmap', "flip test without HRNet's one-column shift of the flipped "
         'heatmaps', STORE_FALSE),
    Flag('decode', 'test.decode', "heatmap decoder: quarter (HRNet's quarter-pixel shift, the paper's) or dark "
         "(DARK's Taylor step); a --udp model always decodes with DARK-UDP", {'choices': DECODERS}),
    Flag('no_post_process', 'test.post_process', 'decode the plain argmax, without the sub-pixel refinement '
         '(quarter-pixel, DARK or DARK-UDP)', STORE_FALSE),
    Flag('val_batch_size', 'test.batch_size', 'person crops per forward pass when validating or predicting'),
))
# The person boxes of a COCO evaluation (HRNet's TEST section): val.py; infer.py takes --det_file.
BOXES = FlagGroup('COCO boxes and post-processing (HRNet TEST section)', (
    Flag('use_gt_bbox', 'test.use_gt_bbox', 'ground-truth person boxes (the default when no --det_file is given)',
         STORE_TRUE),
    Flag('det_file', 'test.det_file', 'person detections (category 1 = person), a JSON list of {image_id, '
         'category_id, bbox [x, y, w, h], score} as COCO detection results, e.g. '
         'COCO_val2017_detections_AP_H_56_person.json', {}, {'test.use_gt_bbox': False}),
    Flag('image_thre', 'test.image_thre', 'keep detections with score >= this'),
    Flag('in_vis_thre', 'test.in_vis_thre', 'rescoring: box score x mean of the joint scores above this'),
    Flag('oks_thre', 'test.oks_thre', 'OKS-NMS threshold per image'),
))
# The training samples: the set and its augmentation (train.py, tools/browse_dataset.py).
TRAIN_DATA = FlagGroup('training data and augmentation', (
    Flag('train_set', 'data.train_set', 'annotation set to train on (MPII annot/<set>.json, any name; trainval '
         'for the test server)'),
    Flag('scale_factor', 'data.scale_factor', 'scale augmentation: x clip(N(0,1)*sf+1, 1-sf, 1+sf)'),
    Flag('rotation_factor', 'data.rotation_factor', 'rotation augmentation: clip(N(0,1)*rf, -2rf, 2rf) degrees '
         'w.p. 0.6'),
    Flag('no_flip', 'data.flip', 'no horizontal flip augmentation', STORE_FALSE),
    Flag('prob_half_body', 'data.prob_half_body', 'half-body crop probability (HRNet PROB_HALF_BODY; 0 = never)'),
    Flag('num_joints_half_body', 'data.num_joints_half_body', 'half body only when more joints than this are '
         'annotated'),
    Flag('reduced_decode', 'data.reduced_decode', 'decode large training images at 1/2, 1/4 or 1/8 resolution when '
         'the crop is small enough (faster data loading; targets unchanged)', STORE_TRUE),
    Flag('seed', 'seed', 'seed of initialisation, shuffling and augmentation'),
))
# The optimisation, its length and what a run logs and keeps (train.py).
TRAIN = FlagGroup('training', (
    Flag('use_joints_weight', 'data.use_joints_weight', "scale the loss of elbows/knees by 1.2 and wrists/ankles "
         "by 1.5 (HRNet USE_DIFFERENT_JOINTS_WEIGHT; COCO's table)", {'action': argparse.BooleanOptionalAction}),
    Flag('pretrained_backbone', 'pretrained_backbone', "ImageNet ResNet weights for pose_resnet: Paddle's own "
         '.pdparams or a torchvision checkpoint converted by tools/convert_weights.py'),
    Flag('init_weights', 'init_weights', 'start from these weights of the whole model (a .pdparams of the same '
         'model and size, e.g. converted by tools/convert_weights.py); all keys must fit'),
    Flag('output_dir', 'output_dir', 'parent folder of runs'),
    Flag('batch_size', 'batch_size', 'training images per iteration and process'),
    Flag('epochs', 'epochs', 'epochs'),
    Flag('optimizer', 'optimizer', 'rmsprop (the paper) or adam (HRNet, MMPose)', {'choices': ('rmsprop', 'adam')}),
    Flag('lr', 'lr', 'initial learning rate'),
    Flag('lr_steps', 'lr_steps', 'epochs at which the lr is multiplied by --lr_gamma', {'nargs': '+', 'type': int}),
    Flag('lr_gamma', 'lr_gamma', 'lr decay factor'),
    Flag('warmup_iters', 'warmup_iters', 'linear lr warm-up over N iterations'),
    Flag('warmup_ratio', 'warmup_ratio', 'warm-up starts at lr x this'),
    Flag('weight_decay', 'weight_decay', 'L2 weight decay'),
    Flag('stack_loss', 'stack_loss', 'combine the per-stack losses: sum (HRNet) or mean (princeton-vl)',
         {'choices': ('sum', 'mean')}),
    Flag('max_iters', 'max_iters', 'stop after this many iterations in all (smoke runs; 0 = no limit)'),
    Flag('eval_every', 'eval_every', 'validate every N epochs (and at the end)'),
    Flag('log_every', 'log_every', 'log a line every N iterations (and at the first and the last)'),
    Flag('log_seconds', 'log_seconds', '... or after this many seconds, whichever comes first'),
    Flag('amp', 'amp', 'mixed precision; fp16 uses a GradScaler', {'choices': ('off', 'fp16', 'bf16')}),
    Flag('amp_level', 'amp_level', 'O1: per-op casting; O2: low-precision weights with float32 master copies',
         {'choices': ('O1', 'O2')}),
    Flag('max_nonfinite', 'max_nonfinite', 'stop with an error after this many skipped (non-finite) steps in a row'),
    Flag('deterministic', 'deterministic', "cuDNN's deterministic convolution algorithms (FLAGS_cudnn_deterministic): "
         'a GPU run repeats bit for bit, somewhat slower', STORE_TRUE),
    Flag('use_vdl', 'use_vdl', 'also log scalars for VisualDL (pip install visualdl)', STORE_TRUE),
))
# Where a script runs (every script that runs a model; infer.py and export.py need no loader workers).
RUN = FlagGroup('device and data loading', (
    Flag('device', 'device', 'auto: the GPU when this Paddle build sees one, else the CPU',
         {'choices': ('auto', 'cpu', 'gpu')}),
    Flag('workers', 'workers', 'data loading processes (0 = in the main process)'),
))
# train.py's groups (tools/preflight.py takes the same).
TRAINING_GROUPS = (DATA, TRAIN_DATA, MODEL, TEST, TRAIN, RUN)

# --save_<part> flags: the parts of lib/vis/debug_images (config key debug_images).
DEBUG_IMAGE_FLAGS = (('batch_images_gt', 'gt', 'training/validation crops with the target joints'),
                     ('batch_images_pred', 'pred', 'crops with the predicted joints'),
                     ('heatmaps_gt', 'hm_gt', 'target heatmaps over the crops'),
                     ('heatmaps_pred', 'hm_pred', 'predicted heatmaps over the crops'))


def pick(group: FlagGroup, *names: str) -> FlagGroup:
    """The rows of `group` named `names`, for a script that takes only some of them."""
    known = {flag.name for flag in group.flags}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KeyError(f'group {group.title!r} has no flag {unknown}; it has {sorted(known)}')
    return FlagGroup(group.title, tuple(flag for flag in group.flags if flag.name in names))


def flags_of(groups: Sequence[FlagGroup]) -> Tuple[Flag, ...]:
    return tuple(flag for group in groups for flag in group.flags)


def flag_name(key: str, groups: Sequence[FlagGroup] = TRAINING_GROUPS + (BOXES,)) -> Optional[str]:
    """'--lr' for 'lr': the flag that sets a config key, or None."""
    return next((f'--{flag.name}' for flag in flags_of(groups) if flag.key == key), None)


# ------------------------------------------------------------------------------------------ the three steps

def get_key(config, key: str):
    """config.data.sigma for 'data.sigma'."""
    for part in key.split('.'):
        config = getattr(config, part)
    return config


def _shown(flag: Flag, value) -> str:
    if flag.kwargs.get('action') == 'store_const':
        return 'off'
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if flag.key == 'data.input_wh':
        return size_name(value)
    if isinstance(value, tuple):
        return ' '.join(map(str, value)) if value else '()'
    return repr(value) if value == '' else str(value)


def add_groups(parser, groups: Sequence[FlagGroup], defaults: Optional[TrainConfig]) -> None:
    """Step 1: the groups' flags, None when not given, under their titles; the help of each ends with its
    default in `defaults` (a resolved preset, see chosen_preset)."""
    for group in groups:
        section = parser.add_argument_group(group.title)
        for flag in group.flags:
            kwargs = dict(flag.kwargs)
            if 'action' not in kwargs and 'type' not in kwargs and key_type(flag.key) in (int, float, str):
                kwargs['type'] = key_type(flag.key)
            shown = '' if defaults is None else f' (default {_shown(flag, get_key(defaults, flag.key))})'
            section.add_argument(f'--{flag.name}', default=None, help=flag.help + shown, **kwargs)


def script_parser(doc: str, argv: Optional[List[str]], weights: bool = False):
    """(parser, preset) of an entry script or tool: its ArgumentParser, described by `doc` and the line that
    says where the defaults of --help come from (`weights`: the script reads weights, whose configuration comes
    first), and the preset that argv's --dataset / --model / --image_size choose (chosen_preset)."""
    preset = chosen_preset(argv)
    parser = argparse.ArgumentParser(description=f'{doc}\n{defaults_note(preset, weights)}',
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, preset


def add_front_door(parser, groups: Sequence[FlagGroup], preset: Optional[TrainConfig], threads: bool = True) -> None:
    """Step 1: the script's groups (add_groups), then what every script shares: --threads (`threads`: the
    scripts that run Paddle's CPU math), --config / --set / --print_config, --debug."""
    add_groups(parser, groups, preset)
    if threads:
        add_threads_argument(parser)
    add_config_arguments(parser)
    add_debug_argument(parser)


def print_config(config: TrainConfig) -> int:
    """--print_config: the resolved configuration as YAML (the format of configs/*.yaml); the exit code, 0."""
    print(dump_yaml(to_dict(config)), end='')
    return 0


def add_weights_argument(parser, note: str = '') -> None:
    """--pretrained_model, the same flag in val.py, infer.py, export.py and tools/draw_predictions.py."""
    parser.add_argument('--pretrained_model', help='weights: a .pdparams written by train.py (best_model/'
                        'model.pdparams, or a checkpoint.pdparams) or tools/convert_weights.py, or a foreign layout '
                        'read as it is (lib/convert/loading.py); its configuration comes with it' + note)


def add_config_arguments(parser) -> None:
    """--config FILE, --set key=value ..., --print_config: in every script."""
    group = parser.add_argument_group('configuration (README, "Configuration")')
    group.add_argument('--config', help='a YAML file of the configuration tree (as configs/*.yaml, or the '
                       "config.json of a run); applied over the preset and the weights' configuration, under "
                       'the flags')
    group.add_argument('--set', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                       help='typed overrides applied last, e.g. --set data.sigma=3 lr=5e-4 test.flip_test=false; '
                       'an unknown key lists the valid ones')
    group.add_argument('--print_config', action='store_true', help='print the resolved configuration as YAML '
                       '(the format of configs/*.yaml) and exit')


def flag_values(args, groups: Sequence[FlagGroup]) -> Dict[str, object]:
    """Step 2: {config key: value} of the groups' flags (None for those not given), with what a given flag
    implies."""
    flags = flags_of(groups)
    values: Dict[str, object] = {flag.key: None for flag in flags}
    for flag in flags:
        value = getattr(args, flag.name)
        if value is not None:
            values[flag.key] = value
            values.update(flag.implies)
    return values


def chosen_preset(argv: Optional[List[str]]) -> Optional[TrainConfig]:
    """The configuration that --help describes: the preset of the --dataset, --model and --image_size on the
    command line, under --config when given; None when those are not valid yet (the parser reports it)."""
    chosen = [pick(group, *names) for group, names in ((DATA, ('dataset', 'image_size')), (MODEL, ('model',)))]
    pre = argparse.ArgumentParser(add_help=False)
    add_groups(pre, chosen, None)
    pre.add_argument('--config')
    known, _ = pre.parse_known_args(argv)
    try:
        return resolve_config(flag_values(known, chosen), config_file=known.config)
    except (ValueError, TypeError, FileNotFoundError, SystemExit):
        try:
            return load_preset()
        except (ValueError, FileNotFoundError):
            return None


def defaults_note(config: Optional[TrainConfig], weights: bool = False) -> str:
    """The line of --help that says where the defaults come from."""
    if config is None:
        return ''
    first = ("With weights, the configuration saved with them (a run's config.json, an exported folder's "
             'inference.json) comes first; otherwise the defaults' if weights else 'Defaults')
    return (f'{first} shown are those of the preset configs/{config.data.dataset}/{config.model.name}.yaml at '
            f'{size_name(config.data.input_wh)} (and --config when given); add --dataset/--model before --help to '
            f'see another preset. Other keys: --set with one of {", ".join(valid_keys())}.')
