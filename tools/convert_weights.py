r"""Convert another codebase's pose checkpoint into a .pdparams for our models, with its config.json.

Usage (one --format per source codebase; --list prints a checkpoint's keys and shapes):
    python tools/convert_weights.py --format princeton_hourglass --source checkpoint.pt \
        --output weights/princeton_hg8/model.pdparams
    python tools/convert_weights.py --format mmpose_hourglass \
        --source hourglass52_mpii_256x256-ae358435_20200812.pth --output weights/mmpose_hg52/model.pdparams
    python tools/convert_weights.py --format mmpose_pose_resnet \
        --source res50_mpii_256x256-418ffc88_20200812.pth --output weights/mmpose_res50/model.pdparams
    python tools/convert_weights.py --format hrnet_pose_resnet \
        --source pose_resnet_50_256x256.pth --output weights/hrnet_res50/model.pdparams
    python tools/convert_weights.py --format torchvision_resnet \
        --source resnet50-19c8e357.pth --output weights/imagenet/resnet50_torchvision.pdparams
    python tools/convert_weights.py --format paddlepose_hourglass52 \
        --source output/256_best_model/model.pdparams --output weights/paddlepose_hg52/model.pdparams
    python tools/convert_weights.py --format fluid_pose_resnet \
        --source pose-resnet50-mpii-384x384 --output weights/fluid_res50_mpii384/model.pdparams
    python tools/convert_weights.py --format tf_simplehumanpose \
        --source model_dump/COCO/snapshot_140.ckpt --output weights/tf_res50_coco/model.pdparams
    python tools/convert_weights.py --format mmpose_hourglass --source <file>.pth --list
    python val.py --dataset_root data/mpii --pretrained_model weights/mmpose_hg52/model.pdparams
    python train.py --model pose_resnet_50 --pretrained_backbone weights/imagenet/resnet50_torchvision.pdparams ...

The model and its size are read from the checkpoint. config.json, written beside the weights, records
them and the conventions the source model was trained with (princeton-vl: RGB in [0, 1] without
mean/std, sigma 1, flip test without heatmap shift; MMPose: RGB with ImageNet mean/std; HRNet: BGR with
the RGB ImageNet statistics; PaddlePose: RGB, ImageNet, flip test without the shift; Fluid: BGR with the
RGB ImageNet statistics, sigma 3; TF-SimpleHumanPose: BGR 0-255 minus the VGG means), in train.py's
config.json layout. Give each converted model its own folder: val.py reads the config.json of the weights'
folder. torchvision_resnet writes the backbone of pose_resnet only, for train.py --pretrained_backbone,
and no config.json. Reading the source needs torch for the PyTorch formats and tensorflow for
tf_simplehumanpose (converter-only dependencies); PaddlePose .pdparams and Fluid directories need neither.
val.py, infer.py and export.py also take PaddlePose's .pdparams and a Fluid directory as they are.
"""
import argparse
import hashlib
import json
import os
import sys
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

# Python puts tools/ (this file's folder), not the cwd, on sys.path; add the repo root so `lib` imports.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in the report

from lib.utils.errors import BadValue, MissingFile, MissingPackage, add_debug_argument, run_cli  # noqa: E402
from lib.convert import CONVERTERS, Conversion, convert_state  # noqa: E402

# princeton-vl's Trainer.model, and DataParallel's module (princeton-vl; HRNet's checkpoint.pth)
WRAPPER_PREFIXES = ('model.', 'module.')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    formats = '; '.join(f'{name}: {c.description}' for name, c in sorted(CONVERTERS.items()))
    p.add_argument('--format', required=True, choices=sorted(CONVERTERS), help=f'what the source is ({formats})')
    p.add_argument('--source', required=True, help='source checkpoint, e.g. checkpoint.pt or an MMPose .pth, a '
                   'PaddlePose model.pdparams, a Fluid persistables directory, a TF checkpoint prefix')
    p.add_argument('--output', help='.pdparams to write; config.json goes beside it')
    p.add_argument('--list', action='store_true', help='print the source keys and shapes, then exit')
    add_debug_argument(p)
    args = p.parse_args(argv)
    if not args.list and not args.output:
        p.error('give --output (the .pdparams to write) or --list')
    if args.output and not args.output.endswith('.pdparams'):
        p.error(f'--output should end in .pdparams; received {args.output!r} '
                '(e.g. weights/princeton_hg8/model.pdparams)')
    return args


def load_torch_checkpoint(path: str):
    """torch.load with weights_only=True: tensors and plain containers only, no pickled code."""
    if not os.path.isfile(path):
        raise MissingFile(f'source checkpoint not found: {path}. Pass the downloaded file, e.g. '
                          'princeton-vl\'s checkpoint.pt.')
    try:
        import torch
    except ImportError:
        raise MissingPackage('torch is needed only for conversion: pip install torch '
                             '(the CPU build is enough; training and evaluation do not need it).') from None
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise BadValue(f'cannot read {path} with torch.load(weights_only=True) ({type(error).__name__}: '
                       f'{error}). Expected a PyTorch checkpoint holding tensors and plain containers; a file '
                       'that needs arbitrary pickled objects is refused for safety: re-save just its state_dict '
                       'with torch.save in the environment that made it.') from None


def find_state_dict(checkpoint, path: str) -> Tuple[Dict[str, object], str]:
    """The state dict inside a checkpoint ({'state_dict': ...} or bare), with the wrapper prefixes
    every key shares removed. Returns (state, removed prefix)."""
    if not isinstance(checkpoint, dict):
        raise BadValue(f'{path} holds a {type(checkpoint).__name__}; expected a dict (a state dict, or a '
                       'checkpoint with a \'state_dict\' entry).')
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not state:
        raise BadValue(f'{path}: no state dict found; received top-level keys {sorted(map(str, checkpoint))[:10]}, '
                       'expected \'state_dict\' or parameter names.')
    not_tensors = [k for k, v in state.items() if not hasattr(v, 'shape')]
    if not_tensors:
        raise BadValue(f'{path}: entries {not_tensors[:5]} are not tensors (top-level keys: '
                       f'{sorted(map(str, checkpoint))[:10]}); expected a checkpoint with a \'state_dict\' entry '
                       'or a bare state dict of parameter name -> tensor.')
    removed = ''
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            return state, removed
        state = {k[len(prefix):]: v for k, v in state.items()}
        removed += prefix


def to_numpy(state: Dict[str, object]) -> Dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() if hasattr(v, 'detach') else np.asarray(v) for k, v in state.items()}


def source_files(path: str) -> List[str]:
    """The files a source consists of: the file itself, a Fluid directory's files, or a TF checkpoint
    prefix's .index and .data-* files."""
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        return [os.path.join(path, n) for n in sorted(os.listdir(path)) if os.path.isfile(os.path.join(path, n))]
    folder, stem = os.path.split(os.path.abspath(path))
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
            if n.startswith(stem + '.') and (n.endswith('.index') or '.data-' in n)]


def sha256_of(path: str) -> str:
    """SHA-256 of the source's bytes (of its files' names and bytes, in name order, for several files)."""
    digest = hashlib.sha256()
    files = source_files(path)
    for name in files:
        if len(files) > 1:
            digest.update(os.path.basename(name).encode() + b'\0')
        with open(name, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()


def run_config(conversion: Conversion, fmt: str, source: str, output: str) -> dict:
    """config.json in train.py's layout (model / data / test), plus where the weights came from."""
    model = {'name': conversion.model_name, **conversion.model_kwargs}
    return {'model': model, **conversion.conventions, 'converted_from': {
        'source': os.path.abspath(source), 'format': fmt, 'sha256': sha256_of(source),
        'weights': os.path.basename(output), 'tensors': len(conversion.state),
        'dropped': {reason: list(conversion.dropped.values()).count(reason)
                    for reason in sorted(set(conversion.dropped.values()))}}}


def check_config_slot(config_path: str, output: str) -> None:
    """Refuse to overwrite a config.json that describes other weights: val.py reads one per folder."""
    if not os.path.isfile(config_path):
        return
    with open(config_path) as f:
        existing = json.load(f)
    owner = existing.get('converted_from', {}).get('weights')
    if owner != os.path.basename(output):
        described = f'converted weights {owner!r}' if owner else 'a training run (train.py)'
        raise BadValue(f'{config_path} already describes {described}; writing {os.path.basename(output)} there '
                       'would give both the same config. Choose an empty folder for --output, e.g. '
                       'weights/princeton_hg8/model.pdparams.')


def print_keys(state: Dict[str, object], removed: str) -> None:
    print(f'{len(state)} tensors (key prefix {removed!r} removed):')
    for key, value in state.items():
        print(f'  {key:60s} {list(value.shape)}')


def print_report(conversion: Conversion, source: Dict[str, np.ndarray], source_path: str, removed: str,
                 output: str, config_path: Optional[str]) -> None:
    kwargs = ' '.join(f'{k}={v}' for k, v in conversion.model_kwargs.items())
    target = (f'the backbone (conv1, bn1, layer1-4) of {conversion.model_name}' if conversion.backbone_only
              else f'{conversion.model_name} {kwargs}'.rstrip())
    print(f'Converted {len(conversion.state)} tensors '
          f'({sum(v.size for v in conversion.state.values()):,} values) from {source_path} '
          f'(key prefix {removed!r} removed) -> {target}')
    by_reason: Dict[str, List[str]] = {}
    for key, reason in conversion.dropped.items():
        by_reason.setdefault(reason, []).append(key)
    print(f'Dropped {len(conversion.dropped)} source keys on purpose:')
    for reason, keys in by_reason.items():
        values = sum(source[k].size for k in keys)
        print(f'  {len(keys)} keys, {values:,} values: {reason}\n'
              f'    {", ".join(keys[:4])}{" ..." if len(keys) > 4 else ""}')
    print(f'Wrote {output}')
    if config_path is None:
        print(f'No config.json: backbone weights only (trained with {json.dumps(conversion.conventions["data"])}). '
              f'Use them as: python train.py --model {conversion.model_name} --pretrained_backbone {output}')
    else:
        print(f'Wrote {config_path}: {json.dumps(conversion.conventions)}')


def read_source(fmt: str, path: str) -> Tuple[Dict[str, object], str]:
    """(state, removed wrapper prefix) of the source, read as its format is stored."""
    reader = CONVERTERS[fmt].reader
    if reader == 'torch':
        return find_state_dict(load_torch_checkpoint(path), path)
    from lib.convert.readers import read_source as read_other
    return read_other(reader, path), ''


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    state, removed = read_source(args.format, args.source)
    if args.list:
        print_keys(state, removed)
        return 0
    config_path = os.path.join(os.path.dirname(os.path.abspath(args.output)), 'config.json')
    backbone_only = CONVERTERS[args.format].backbone_only
    if not backbone_only:
        check_config_slot(config_path, args.output)
    source = to_numpy(state)
    conversion = convert_state(args.format, source, args.source)

    from lib.utils.checkpoint import atomic_save   # imports Paddle: not needed for --list
    atomic_save(conversion.weights(), args.output)
    if backbone_only:
        config_path = None       # a backbone is not a model val.py could run: no config.json
    else:
        config = run_config(conversion, args.format, args.source, args.output)
        tmp = f'{config_path}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(config, f, indent=2)
        os.replace(tmp, config_path)
    print_report(conversion, source, args.source, removed, args.output, config_path)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
