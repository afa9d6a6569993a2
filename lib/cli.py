"""The command-line layer of a run's configuration: flags that name config keys, --config / --set /
--print_config, and help texts that show the defaults of the chosen preset (lib/config.resolve_config)."""
import argparse
from typing import Dict, List, NamedTuple, Optional, Sequence

from lib.config import (DATASETS, DECODERS, TrainConfig, image_size_arg, key_type, load_preset, preset_names,
                        resolve_config, valid_keys)


class Flag(NamedTuple):
    """A command-line flag that sets the config key `key`; its default is shown from the preset."""
    name: str
    key: str
    help: str
    kwargs: dict = {}


def _store(value) -> dict:
    return {'action': 'store_const', 'const': value}


# The flags users of the reproductions know; everything else is reachable through --set key=value.
DATA_FLAGS = (
    Flag('dataset', 'data.dataset', 'mpii or coco (person keypoints); the presets are per dataset',
         {'choices': DATASETS}),
    Flag('model', 'model.name', 'architecture, with its reference recipe on the dataset (configs/<dataset>/'
         '<model>.yaml)', {'choices': preset_names()}),
    Flag('dataset_root', 'data.dataset_root', 'MPII in the HRNet layout, or COCO with annotations/ and '
         'images/<set>/ or <set>/'),
    Flag('image_size', 'data.input_wh', 'input size: a side (256 = 256x256) or HEIGHTxWIDTH as HRNet names it '
         '(256x192 = 192 wide); heatmaps are a quarter of it; multiples of 64 for hourglass, 128 for '
         'hourglass52/104, 32 for pose_resnet', {'type': image_size_arg}),
)
TRAIN_FLAGS = DATA_FLAGS + (
    Flag('sigma', 'data.sigma', 'Gaussian target sigma in heatmap pixels (HRNet; COCO inputs 384 high: 3)'),
    Flag('scale_factor', 'data.scale_factor', 'scale augmentation: x clip(N(0,1)*sf+1, 1-sf, 1+sf)'),
    Flag('rotation_factor', 'data.rotation_factor', 'rotation augmentation: clip(N(0,1)*rf, -2rf, 2rf) degrees '
         'w.p. 0.6'),
    Flag('no_flip', 'data.flip', 'no horizontal flip augmentation', _store(False)),
    Flag('prob_half_body', 'data.prob_half_body', 'half-body crop probability (HRNet PROB_HALF_BODY; 0 = never)'),
    Flag('num_joints_half_body', 'data.num_joints_half_body', 'half body only when more joints than this are '
         'annotated'),
    Flag('use_joints_weight', 'data.use_joints_weight', "scale the loss of elbows/knees by 1.2 and wrists/ankles "
         "by 1.5 (HRNet USE_DIFFERENT_JOINTS_WEIGHT; COCO's table)", {'action': argparse.BooleanOptionalAction}),
    Flag('reduced_decode', 'data.reduced_decode', 'decode large training images at 1/2, 1/4 or 1/8 resolution when '
         'the crop is small enough (faster data loading; targets unchanged)', _store(True)),
    Flag('udp', 'data.udp', "UDP's unbiased crop, targets and decoding (DARK-UDP) for training and validation; "
         'travels with the weights (README "DARK and UDP")', _store(True)),
    Flag('unbiased_encoding', 'data.unbiased_encoding', "DARK's unbiased targets: the Gaussian at the exact "
         'sub-pixel joint position (MMPose MSRAHeatmap(unbiased=True)); pair with --decode dark', _store(True)),
    Flag('train_set', 'data.train_set', 'annotation file used for training (trainval for the test server)'),
    Flag('valid_set', 'data.valid_set', 'annotation file used for validation'),
    Flag('num_stacks', 'model.num_stacks', 'hourglass stacks: 1, 2, 4 or 8 (hourglass only)'),
    Flag('num_features', 'model.num_features', 'hourglass width (hourglass only)'),
    Flag('pretrained_backbone', 'pretrained_backbone', "ImageNet ResNet weights for pose_resnet: Paddle's own "
         '.pdparams or a torchvision checkpoint converted by tools/convert_weights.py'),
    Flag('output_dir', 'output_dir', 'parent folder of runs'),
    Flag('batch_size', 'batch_size', 'images per iteration and process'),
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
    Flag('workers', 'workers', 'data loading processes'),
    Flag('seed', 'seed', 'seed of initialisation, shuffling and augmentation'),
    Flag('device', 'device', 'auto: GPU when present', {'choices': ('auto', 'cpu', 'gpu')}),
    Flag('deterministic', 'deterministic', "cuDNN's deterministic convolution algorithms (FLAGS_cudnn_deterministic): "
         'a GPU run repeats bit for bit, somewhat slower', _store(True)),
    Flag('max_iters', 'max_iters', 'stop after this many iterations in all (smoke runs; 0 = no limit)'),
    Flag('eval_every', 'eval_every', 'validate every N epochs (and at the end)'),
    Flag('log_every', 'log_every', 'log a line every N iterations (and at the first and the last)'),
    Flag('log_seconds', 'log_seconds', '... or after this many seconds, whichever comes first'),
    Flag('val_batch_size', 'test.batch_size', 'validation batch size'),
    Flag('no_flip_test', 'test.flip_test', 'validate without the flip test', _store(False)),
    Flag('decode', 'test.decode', "heatmap decoder: quarter (HRNet's quarter-pixel shift, the paper's) or dark "
         "(DARK's Taylor step); with --udp, DARK-UDP", {'choices': DECODERS}),
    Flag('amp', 'amp', 'mixed precision; fp16 uses a GradScaler', {'choices': ('off', 'fp16', 'bf16')}),
    Flag('amp_level', 'amp_level', 'O1: per-op casting; O2: low-precision weights with float32 master copies',
         {'choices': ('O1', 'O2')}),
    Flag('max_nonfinite', 'max_nonfinite', 'stop with an error after this many skipped (non-finite) steps in a row'),
    Flag('use_vdl', 'use_vdl', 'also log scalars for VisualDL (pip install visualdl)', _store(True)),
)
# --save_<part> flags: the parts of debug_images.
DEBUG_IMAGE_FLAGS = (('batch_images_gt', 'gt', 'training/validation crops with the target joints'),
                     ('batch_images_pred', 'pred', 'crops with the predicted joints'),
                     ('heatmaps_gt', 'hm_gt', 'target heatmaps over the crops'),
                     ('heatmaps_pred', 'hm_pred', 'predicted heatmaps over the crops'))


def get_key(config, key: str):
    """config.data.sigma for 'data.sigma'."""
    for part in key.split('.'):
        config = getattr(config, part)
    return config


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ' '.join(map(str, value)) if value else '()'
    return repr(value) if value == '' else str(value)


def add_flags(parser, flags: Sequence[Flag], defaults: Optional[TrainConfig]) -> None:
    """The flags, None when not given; their help ends with the default from `defaults` (a resolved preset)."""
    for flag in flags:
        kwargs = dict(flag.kwargs)
        value = get_key(defaults, flag.key) if defaults is not None else None
        if 'action' not in kwargs and 'type' not in kwargs and key_type(flag.key) in (int, float, str):
            kwargs['type'] = key_type(flag.key)
        if flag.key == 'data.input_wh' and value is not None:
            shown = f'{value[1]}x{value[0]}' if value[0] != value[1] else str(value[0])
        elif kwargs.get('action') == 'store_const':
            shown = 'off'
        else:
            shown = _shown(value)
        help_text = flag.help if defaults is None else f'{flag.help} (default {shown})'
        parser.add_argument(f'--{flag.name}', default=None, help=help_text, **kwargs)


def add_config_arguments(parser) -> None:
    """--config FILE, --set key=value ..., --print_config."""
    group = parser.add_argument_group('configuration (README, "Configuration")')
    group.add_argument('--config', help='a YAML file of the configuration tree (as configs/*.yaml, or the '
                       "config.json of a run); applied over the preset, under the flags")
    group.add_argument('--set', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                       help='typed overrides applied last, e.g. --set data.sigma=3 lr=5e-4 test.flip_test=false; '
                       'an unknown key lists the valid ones')
    group.add_argument('--print_config', action='store_true', help='print the resolved configuration as YAML '
                       '(the format of configs/*.yaml) and exit')


def flag_values(args, flags: Sequence[Flag]) -> Dict[str, object]:
    """{config key: value} of the flags given (None for the others)."""
    return {flag.key: getattr(args, flag.name) for flag in flags}


def chosen_preset(argv: Optional[List[str]], flags: Sequence[Flag] = DATA_FLAGS) -> Optional[TrainConfig]:
    """The configuration that --help describes: the preset of the --dataset, --model and --image_size on the
    command line, under --config when given; None when those are not valid yet (the parser reports it)."""
    pre = argparse.ArgumentParser(add_help=False)
    add_flags(pre, flags, None)
    pre.add_argument('--config')
    known, _ = pre.parse_known_args(argv)
    try:
        return resolve_config(flag_values(known, flags), config_file=known.config)
    except (ValueError, TypeError, FileNotFoundError, SystemExit):
        try:
            return load_preset()
        except (ValueError, FileNotFoundError):
            return None


def defaults_note(config: Optional[TrainConfig]) -> str:
    """The line of --help that says where the defaults come from."""
    if config is None:
        return ''
    data = config.data
    return (f'Defaults shown are those of the preset configs/{data.dataset}/{config.model.name}.yaml at '
            f'{data.input_wh[1]}x{data.input_wh[0]} (and --config when given); add --dataset/--model before '
            f'--help to see another preset. Other keys: --set with one of {", ".join(valid_keys())}.')
