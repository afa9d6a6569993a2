"""The catalogue of bad inputs: each a command of an entry script on data that one mistake spoiled, with the
words its one error message must contain. tests/test_bad_inputs.py runs every case in process; run this file
to try them as a user does, each in its own process, and print the table of messages:

    python -m tests.bad_inputs [--filter TEXT]

Every case must end with a non-zero exit, no traceback and a message that names the input.
"""
import argparse
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
from typing import Callable, List, NamedTuple, Optional, Sequence

import numpy as np

from tests.helpers import CPU, REPO, TINY_MODEL

# One epoch of two iterations: every training image is read.
TRAIN = ['--batch_size', '4', *CPU, '--epochs', '1', '--val_batch_size', '8', *TINY_MODEL]


class Workspace(NamedTuple):
    """What a case may spoil: `data` (a copy of a small synthetic MPII dataset), `weights` (a copy of a tiny
    trained hourglass, config.json beside it), `model_dir` (its export), `tmp` (an empty folder), `coco` (a
    copy of a tiny COCO dataset: annotations/person_keypoints_val2017.json, val2017/)."""
    data: str
    weights: str
    model_dir: str
    tmp: str
    coco: str


class Case(NamedTuple):
    name: str                 # what is wrong, as the closing table names it
    script: str               # train.py, val.py, infer.py, export.py, tools/...
    args: Callable[[Workspace], List[str]]
    expect: Sequence[str]     # words the message must contain (the input it names)
    spoil: Optional[Callable[[Workspace], None]] = None
    workers: bool = False     # spoils data read by DataLoader workers


# ---- ways to spoil the inputs ---------------------------------------------------------------------------------

def edit_json(path: str, change: Callable[[object], object]) -> None:
    with open(path) as f:
        values = json.load(f)
    values = change(values) or values
    with open(path, 'w') as f:
        json.dump(values, f)


def edit_entry(split: str, index: int, **fields) -> Callable[[Workspace], None]:
    def spoil(ws):
        def change(entries):
            entries[index].update(fields)
        edit_json(os.path.join(ws.data, 'annot', f'{split}.json'), change)
    return spoil


def drop_field(split: str, index: int, key: str) -> Callable[[Workspace], None]:
    def spoil(ws):
        def change(entries):
            del entries[index][key]
        edit_json(os.path.join(ws.data, 'annot', f'{split}.json'), change)
    return spoil


def write_bytes(path_of: Callable[[Workspace], str], data: bytes) -> Callable[[Workspace], None]:
    def spoil(ws):
        with open(path_of(ws), 'wb') as f:
            f.write(data)
    return spoil


def first_image(ws: Workspace, split: str = 'valid') -> str:
    with open(os.path.join(ws.data, 'annot', f'{split}.json')) as f:
        return os.path.join(ws.data, 'images', json.load(f)[0]['image'])


def truncate_image(split: str) -> Callable[[Workspace], None]:
    def spoil(ws):
        path = first_image(ws, split)
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    return spoil


def remove_image(split: str) -> Callable[[Workspace], None]:
    return lambda ws: os.remove(first_image(ws, split))


def save_weights(change: Callable[[dict], dict]) -> Callable[[Workspace], None]:
    def spoil(ws):
        import paddle
        from lib.utils.checkpoint import load_file
        state = change(load_file(ws.weights))
        paddle.save(state, ws.weights)
    return spoil


def poison_first(value: float) -> Callable[[dict], dict]:
    def change(state):
        name = next(k for k, v in state.items() if np.issubdtype(np.asarray(v).dtype, np.floating))
        array = np.array(state[name], copy=True)
        array.flat[0] = value
        state[name] = array
        return state
    return change


class _RunsCode:
    """A pickle that calls os.system when loaded."""
    def __reduce__(self):
        return os.system, ('echo pwned',)


def malicious_weights(ws: Workspace) -> None:
    with open(ws.weights, 'wb') as f:
        pickle.dump({'conv.weight': _RunsCode()}, f, protocol=2)


MOUNTED: List[str] = []       # read-only file systems mounted by cases, unmounted by release_mounts


def can_make_read_only() -> bool:
    """Whether a folder can be made read-only here: by permissions for a user, by mounting a read-only tmpfs
    for root (whom permissions do not stop), which needs the right to mount."""
    if os.geteuid() != 0:
        return True
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', folder],
                          capture_output=True).returncode != 0:
            return False
        subprocess.run(['umount', folder], check=True)
    return True


def read_only(path_of: Callable[[Workspace], str]) -> Callable[[Workspace], None]:
    def spoil(ws):
        path = path_of(ws)
        os.makedirs(path, exist_ok=True)
        if os.geteuid() == 0:
            subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', path], check=True)
            MOUNTED.append(path)
        else:
            os.chmod(path, 0o555)
    return spoil


def release_mounts() -> None:
    while MOUNTED:
        subprocess.run(['umount', MOUNTED.pop()], check=False)


def edit_inference_json(change: Callable[[dict], None]) -> Callable[[Workspace], None]:
    return lambda ws: edit_json(os.path.join(ws.model_dir, 'inference.json'), change)


def coco_annotation(change: Callable[[dict], None]) -> Callable[[Workspace], None]:
    return lambda ws: edit_json(os.path.join(ws.coco, 'annotations', 'person_keypoints_val2017.json'), change)


def first_person(change: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(values):
        change(next(a for a in values['annotations'] if a.get('num_keypoints', 0) > 0 and not a.get('iscrowd')))
    return edit


# ---- the command lines -----------------------------------------------------------------------------------------

def train(*extra: str) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--dataset_root', ws.data, '--output_dir', ws.tmp, *TRAIN, *extra]


def val(*extra: str) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--pretrained_model', ws.weights, '--dataset_root', ws.data,
                       '--output_dir', os.path.join(ws.tmp, 'val'), *CPU, *extra]


def val_coco(*extra: str) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--dataset', 'coco', '--oracle', '--dataset_root', ws.coco,
                       '--output_dir', os.path.join(ws.tmp, 'val'), *extra]


def infer(*extra: str, image: Callable[[Workspace], str] = first_image) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--input', image(ws), '--pretrained_model', ws.weights, '--device', 'cpu',
                       '--output_dir', os.path.join(ws.tmp, 'infer'), *extra]


def infer_exported(*extra: str) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--input', first_image(ws), '--backend', 'paddle-inference', '--model_dir', ws.model_dir,
                       '--output_dir', os.path.join(ws.tmp, 'infer'), *extra]


def export(*extra: str) -> Callable[[Workspace], List[str]]:
    return lambda ws: ['--pretrained_model', ws.weights, '--output_dir', os.path.join(ws.tmp, 'export'),
                       '--no_check', *extra]


def dets(ws: Workspace) -> str:
    return os.path.join(ws.tmp, 'dets.json')


def det_case(name: str, content, expect: Sequence[str]) -> Case:
    """infer.py with a detection file holding `content` (bytes as they are, anything else as JSON)."""
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    return Case(name, 'infer.py', lambda ws: infer('--det_file', dets(ws))(ws), expect,
                write_bytes(dets, data))


def image_id(ws: Workspace) -> int:
    """The id infer.py reads from the first validation image's name (the integer in it)."""
    return int(os.path.splitext(os.path.basename(first_image(ws)))[0])


GOOD_BOX = [200.0, 50.0, 150.0, 250.0]


class DetCase(NamedTuple):
    name: str
    fields: dict
    expect: Sequence[str]


def det_cases() -> List[Case]:
    """Detection files for infer.py, each with one spoiled field of an otherwise good detection."""
    rows = [
        DetCase('detection bbox with 3 numbers', {'bbox': [1, 2, 3]}, ['bbox', 'x, y, w, h']),
        DetCase('detection bbox of strings', {'bbox': ['a', 'b', 'c', 'd']}, ['bbox']),
        DetCase('detection bbox with width 0', {'bbox': [10, 10, 0, 50]}, ['bbox', 'w, h > 0']),
        DetCase('detection bbox with NaN', {'bbox': [10, 10, float('nan'), 50]}, ['bbox', 'finite']),
        DetCase('detection box outside the image', {'bbox': [5000, 5000, 100, 100]}, ['outside the image']),
        DetCase('detection score NaN', {'score': float('nan')}, ['score']),
        DetCase('detection score a string', {'score': 'high'}, ['score']),
        DetCase('detection category_id a string', {'category_id': 'person'}, ['category_id']),
        DetCase('detection without bbox', {'bbox': None}, ['bbox']),
    ]
    cases = []
    for row in rows:
        def spoil(ws, fields=row.fields):
            entry = {'image_id': image_id(ws), 'category_id': 1, 'bbox': GOOD_BOX, 'score': 0.9}
            entry.update(fields)
            entry = {k: v for k, v in entry.items() if v is not None}
            with open(dets(ws), 'w') as f:
                f.write(json.dumps([entry]))        # NaN written as JSON's NaN, as Python writes it
        cases.append(Case(row.name, 'infer.py', lambda ws: infer('--det_file', dets(ws))(ws),
                          ['dets.json', *row.expect], spoil))
    return cases


def build_cases() -> List[Case]:
    annot = lambda ws, split='train': os.path.join(ws.data, 'annot', f'{split}.json')  # noqa: E731
    cases = [
        # ---- train.py flags and configuration
        Case('--lr 0', 'train.py', train('--lr', '0'), ['lr=0', '> 0']),
        Case('--lr -1', 'train.py', train('--lr', '-1'), ['lr=-1', '> 0']),
        Case('--lr nan', 'train.py', train('--lr', 'nan'), ['lr=nan', 'finite']),
        Case('--epochs 0', 'train.py', train('--epochs', '0'), ['epochs=0', '>= 1']),
        Case('--sigma 0', 'train.py', train('--sigma', '0'), ['sigma=0', '> 0']),
        Case('--workers -1', 'train.py', train('--workers', '-1'), ['workers=-1', '>= 0']),
        Case('--batch_size 0', 'train.py', train('--batch_size', '0'), ['batch_size=0', '>= 1']),
        Case('--batch_size larger than the training set', 'train.py', train('--batch_size', '64'),
             ['64', 'training set has']),
        Case('--image_size 300 for hourglass', 'train.py', train('--image_size', '300'), ['multiples of 64']),
        Case('--image_size abc', 'train.py', train('--image_size', 'abc'), ['--image_size', "'abc'"]),
        Case('--image_size 0', 'train.py', train('--image_size', '0'), ['--image_size', "'0'"]),
        Case('--num_features 7', 'train.py', train('--num_features', '7'), ['num_features', '7']),
        Case('--lr_steps decreasing', 'train.py', train('--lr_steps', '20', '10'), ['--lr_steps', '[20, 10]']),
        Case('--warmup_ratio -1', 'train.py', train('--warmup_ratio', '-1'), ['warmup_ratio=-1']),
        Case('--eval_every 0', 'train.py', train('--eval_every', '0'), ['eval_every=0']),
        Case('--log_every 0', 'train.py', train('--log_every', '0'), ['log_every=0']),
        Case('--log_seconds -5', 'train.py', train('--log_seconds', '-5'), ['log_seconds=-5']),
        Case('--seed -1', 'train.py', train('--seed', '-1'), ['seed=-1']),
        Case('--prob_half_body 2', 'train.py', train('--prob_half_body', '2'), ['prob_half_body=2']),
        Case('--rotation_factor nan', 'train.py', train('--rotation_factor', 'nan'), ['rotation_factor=nan']),
        Case('--threads 0', 'train.py', train('--threads', '0'), ['--threads', '0']),
        Case('--model unknown', 'train.py', train('--model', 'resnet'), ['--model', "'resnet'"]),
        Case('--dataset_root missing', 'train.py',
             lambda ws: train()(ws) + ['--dataset_root', os.path.join(ws.tmp, 'nowhere')], ['nowhere']),
        Case('--dataset_root is a file', 'train.py',
             lambda ws: train()(ws) + ['--dataset_root', annot(ws)], ['train.json']),
        Case('--config missing', 'train.py', lambda ws: train('--config', os.path.join(ws.tmp, 'no.yaml'))(ws),
             ['no.yaml', 'does not exist']),
        Case('--config not YAML', 'train.py', lambda ws: train('--config', os.path.join(ws.tmp, 'bad.yaml'))(ws),
             ['bad.yaml', 'YAML'], write_bytes(lambda ws: os.path.join(ws.tmp, 'bad.yaml'), b'lr: [1, 2\n')),
        Case('--set unknown key', 'train.py', train('--set', 'data.sigmaa=2'), ['data.sigmaa']),
        Case('--set lr=abc', 'train.py', train('--set', 'lr=abc'), ['lr', "'abc'"]),
        Case('--set data.std=[0,0,0]', 'train.py', train('--set', 'data.std=[0,0,0]'), ['data.std', 'none 0']),
        Case('--resume missing', 'train.py', lambda ws: ['--resume', os.path.join(ws.tmp, 'ck.pdparams')],
             ['ck.pdparams']),
        Case('--resume a weights file, not a checkpoint', 'train.py', lambda ws: ['--resume', ws.weights],
             ['model.pdparams', 'resumable checkpoint']),
        Case('--pretrained_backbone missing', 'train.py',
             lambda ws: ['--dataset_root', ws.data, '--output_dir', ws.tmp, '--model', 'pose_resnet_18', '--image_size',
                         '64', *CPU, '--batch_size', '4', '--pretrained_backbone', os.path.join(ws.tmp, 'r18.pdparams')],
             ['r18.pdparams']),
        Case('--pretrained_backbone for an hourglass', 'train.py',
             lambda ws: train('--pretrained_backbone', os.path.join(ws.tmp, 'r50.pdparams'))(ws),
             ['--pretrained_backbone', 'pose_resnet']),
        Case('--output_dir is a file', 'train.py', lambda ws: train()(ws) + ['--output_dir', annot(ws)],
             ['train.json']),
        Case('--output_dir read-only', 'train.py', lambda ws: train()(ws) + ['--output_dir', os.path.join(ws.tmp, 'ro')],
             ['ro'], read_only(lambda ws: os.path.join(ws.tmp, 'ro'))),
        # ---- MPII annotations
        Case('train.json missing', 'train.py', train(), ['train.json', 'does not exist'],
             lambda ws: os.remove(annot(ws))),
        Case('valid.json binary', 'train.py', train(), ['valid.json', 'not valid JSON'],
             write_bytes(lambda ws: annot(ws, 'valid'), bytes(range(256)) * 4)),
        Case('train.json invalid JSON', 'train.py', train(), ['train.json', 'not valid JSON'],
             write_bytes(lambda ws: annot(ws), b'[{"image": ')),
        Case('train.json an object', 'train.py', train(), ['train.json', 'list'],
             write_bytes(lambda ws: annot(ws), b'{"a": 1}')),
        Case('train.json empty list', 'train.py', train(), ['train.json', 'non-empty'],
             write_bytes(lambda ws: annot(ws), b'[]')),
        Case('entry without joints', 'train.py', train(), ['train.json', 'entry 0', "missing field 'joints'"],
             drop_field('train', 0, 'joints')),
        Case('joints_vis 7', 'train.py', train(), ['train.json', 'entry 2', 'joints_vis'],
             edit_entry('train', 2, joints_vis=[7] * 16)),
        Case('person scale 1e9', 'train.py', train(), ['train.json', 'entry 1', 'scale'],
             edit_entry('train', 1, scale=1e9)),
        Case('person scale 0', 'train.py', train(), ['train.json', 'entry 1', 'scale'], edit_entry('train', 1, scale=0)),
        Case('person centre NaN', 'val.py', val(), ['valid.json', 'entry 0', 'center'],
             lambda ws: edit_json(annot(ws, 'valid'), lambda e: e[0].update(center=[float('nan'), 3.0]))),
        Case('15 joints instead of 16', 'train.py', train(), ['train.json', 'entry 0', '16'],
             lambda ws: edit_json(annot(ws), lambda e: e[0].update(joints=e[0]['joints'][:15],
                                                                   joints_vis=e[0]['joints_vis'][:15]))),
        Case('image name not a string', 'train.py', train(), ['train.json', 'entry 0', 'image'],
             edit_entry('train', 0, image=5)),
        Case('training image missing', 'train.py', train(), ['cannot read image'], remove_image('train')),
        Case('training image missing, loader workers', 'train.py', train('--workers', '1'), ['cannot read image'],
             remove_image('train'), workers=True),
        Case('training image truncated', 'train.py', train(), ['truncated'], truncate_image('train')),
        Case('training image not an image', 'train.py', train('--workers', '1'), ['cannot read image'],
             write_bytes(lambda ws: first_image(ws, 'train'), b'hello'), workers=True),
        Case('validation image truncated', 'val.py', val(), ['truncated'], truncate_image('valid')),
        Case('validation image empty (0 bytes)', 'val.py', val(), ['cannot read image', 'empty'],
             write_bytes(lambda ws: first_image(ws, 'valid'), b'')),
        Case('an image path that is a folder', 'val.py', val(), ['cannot read image'],
             lambda ws: (os.remove(first_image(ws)), os.mkdir(first_image(ws)))),
        Case('validation image missing, loader workers', 'val.py', val('--workers', '1'), ['cannot read image'],
             remove_image('valid'), workers=True),
        Case('images/ folder missing', 'val.py', val(), ['images'],
             lambda ws: shutil.rmtree(os.path.join(ws.data, 'images'))),
        Case('gt_valid.mat missing', 'val.py', val(), ['gt_valid.mat'],
             lambda ws: os.remove(os.path.join(ws.data, 'annot', 'gt_valid.mat'))),
        Case('gt_valid.mat garbage', 'val.py', val(), ['gt_valid.mat'],
             write_bytes(lambda ws: os.path.join(ws.data, 'annot', 'gt_valid.mat'), b'not a mat file')),
        # ---- weights files
        Case('weights missing', 'val.py', lambda ws: val()(ws) + ['--pretrained_model', ws.weights + '.x'],
             ['model.pdparams.x']),
        Case('weights a folder', 'val.py', lambda ws: val()(ws) + ['--pretrained_model', ws.tmp], [os.sep]),
        Case('weights garbage', 'val.py', val(), ['model.pdparams'], write_bytes(lambda ws: ws.weights, b'\x00' * 64)),
        Case('weights truncated', 'val.py', val(), ['model.pdparams', 'truncated'],
             lambda ws: open(ws.weights, 'r+b').truncate(1000)),
        Case('weights that run code (val.py)', 'val.py', val(), ['model.pdparams', 'system'], malicious_weights),
        Case('weights that run code (infer.py)', 'infer.py', infer(), ['model.pdparams', 'system'], malicious_weights),
        Case('weights that run code (export.py)', 'export.py', export(), ['model.pdparams', 'system'],
             malicious_weights),
        Case('weights that run code (--resume)', 'train.py', lambda ws: ['--resume', ws.weights],
             ['model.pdparams', 'system'], malicious_weights),
        Case('weights that run code (draw_predictions.py)', 'tools/draw_predictions.py',
             lambda ws: ['--dataset_root', ws.data, '--pretrained_model', ws.weights, '--num', '2', '--output',
                         os.path.join(ws.tmp, 'drawn.jpg')], ['model.pdparams', 'system'], malicious_weights),
        Case('weights that run code (--pretrained_backbone)', 'train.py',
             lambda ws: ['--dataset_root', ws.data, '--output_dir', ws.tmp, '--model', 'pose_resnet_18', '--image_size',
                         '64', *CPU, '--batch_size', '4', '--pretrained_backbone', ws.weights],
             ['model.pdparams', 'system'], malicious_weights),
        Case('draw_predictions.py --num 0', 'tools/draw_predictions.py',
             lambda ws: ['--dataset_root', ws.data, '--num', '0', '--output', os.path.join(ws.tmp, 'drawn.jpg')],
             ['--num', '0']),
        Case('weights with NaN (val.py)', 'val.py', val(), ['model.pdparams', 'NaN'], save_weights(poison_first(math.nan))),
        Case('weights with inf (infer.py)', 'infer.py', infer(), ['model.pdparams', 'inf'],
             save_weights(poison_first(math.inf))),
        Case('weights with NaN (export.py)', 'export.py', export(), ['model.pdparams', 'NaN'],
             save_weights(poison_first(math.nan))),
        Case('weights of another model', 'val.py', val('--num_features', '32'), ['model.pdparams', 'shape']),
        Case('weights an empty dict', 'val.py', val(), ['model.pdparams', 'missing'], save_weights(lambda s: {})),
        Case('config.json beside the weights invalid', 'val.py', val(), ['config.json'],
             write_bytes(lambda ws: os.path.join(os.path.dirname(os.path.dirname(ws.weights)), 'config.json'),
                         b'{"model": ')),
        # ---- val.py flags and prediction files
        Case('val.py --image_size 300', 'val.py', val('--image_size', '300'), ['multiples of 64']),
        Case('val.py --val_batch_size 0', 'val.py', val('--val_batch_size', '0'), ['test.batch_size=0', '>= 1']),
        Case('val.py --workers -1', 'val.py', val('--workers', '-1'), ['workers=-1', '>= 0']),
        Case('val.py --sigma 0 (oracle)', 'val.py',
             lambda ws: ['--oracle', '--dataset_root', ws.data, '--sigma', '0', '--output_dir', ws.tmp], ['sigma=0']),
        Case('val.py --output_dir read-only', 'val.py', lambda ws: val()(ws) + ['--output_dir', os.path.join(ws.tmp, 'ro')],
             ['ro', 'writ'], read_only(lambda ws: os.path.join(ws.tmp, 'ro'))),
        Case('--preds_file missing', 'val.py',
             lambda ws: ['--preds_file', os.path.join(ws.tmp, 'pred.mat'), '--dataset_root', ws.data,
                         '--output_dir', ws.tmp], ['pred.mat']),
        Case('--preds_file with NaN', 'val.py',
             lambda ws: ['--preds_file', os.path.join(ws.tmp, 'pred.mat'), '--dataset_root', ws.data,
                         '--output_dir', ws.tmp], ['pred.mat', 'NaN'],
             lambda ws: _write_preds(ws, np.nan)),
        Case('--preds_file of the wrong shape', 'val.py',
             lambda ws: ['--preds_file', os.path.join(ws.tmp, 'pred.mat'), '--dataset_root', ws.data,
                         '--output_dir', ws.tmp], ['pred.mat', 'shape'],
             lambda ws: _write_preds(ws, 1.0, people=3)),
        # ---- infer.py
        Case('--input missing', 'infer.py', infer(image=lambda ws: os.path.join(ws.tmp, 'no.jpg')), ['no.jpg']),
        Case('--input empty folder', 'infer.py', infer(image=lambda ws: ws.tmp), ['holds no images']),
        Case('--input not an image', 'infer.py', infer(image=lambda ws: os.path.join(ws.tmp, 'x.jpg')), ['x.jpg'],
             write_bytes(lambda ws: os.path.join(ws.tmp, 'x.jpg'), b'hello')),
        Case('--input truncated JPEG', 'infer.py', infer(), ['truncated'], truncate_image('valid')),
        Case('--bbox not numbers', 'infer.py', infer('--bbox', 'a,b,c,d'), ['--bbox', "'a,b,c,d'"]),
        Case('--bbox width 0', 'infer.py', infer('--bbox', '1,2,0,4'), ['--bbox', "'1,2,0,4'"]),
        Case('--bbox outside the image', 'infer.py', infer('--bbox', '5000,5000,100,100'), ['--bbox', 'outside']),
        Case('--det_thr nan', 'infer.py', infer('--det_thr', 'nan'), ['--det_thr', 'nan']),
        Case('--kpt_thr 2', 'infer.py', infer('--kpt_thr', '2'), ['--kpt_thr', '2']),
        Case('--val_batch_size 0 (infer.py)', 'infer.py', infer('--val_batch_size', '0'), ['test.batch_size=0', '>= 1']),
        Case('--output_dir read-only (infer.py)', 'infer.py',
             lambda ws: infer()(ws) + ['--output_dir', os.path.join(ws.tmp, 'ro')], ['ro', 'writ'],
             read_only(lambda ws: os.path.join(ws.tmp, 'ro'))),
        Case('--det_file missing', 'infer.py', lambda ws: infer('--det_file', dets(ws))(ws), ['dets.json']),
        det_case('--det_file binary', bytes(range(256)), ['dets.json', 'JSON']),
        det_case('--det_file invalid JSON', b'[{"bbox": ', ['dets.json', 'JSON']),
        det_case('--det_file an object', {'a': 1}, ['dets.json']),
        det_case('--det_file a list of numbers', [1, 2], ['dets.json', 'detection 0']),
        *det_cases(),
        Case('--model_dir missing', 'infer.py', lambda ws: infer_exported()(ws) + ['--model_dir', ws.tmp + '/none'],
             ['none']),
        Case('inference.json std 0', 'infer.py', infer_exported(), ['inference.json', 'std'],
             edit_inference_json(lambda v: v['data'].update(std=[0, 0, 0]))),
        Case('inference.json file outside the folder', 'infer.py', infer_exported(), ['inference.json', '..'],
             edit_inference_json(lambda v: v['files'].update(paddle_params='../../etc/passwd'))),
        Case('inference.json invalid JSON', 'infer.py', infer_exported(), ['inference.json', 'JSON'],
             write_bytes(lambda ws: os.path.join(ws.model_dir, 'inference.json'), b'{')),
        Case('inference.json unknown model', 'infer.py', infer_exported(), ['inference.json', 'model'],
             edit_inference_json(lambda v: v['model'].update(name='alexnet'))),
        # ---- export.py
        Case('export.py --image_size 300', 'export.py', export('--image_size', '300'), ['multiples of 64']),
        Case('export.py --image_size 0', 'export.py', export('--image_size', '0'), ['--image_size', '0']),
        Case('export.py --opset 99', 'export.py', export('--onnx', '--opset', '99'), ['--opset', '99']),
        Case('export.py --output_dir read-only', 'export.py',
             lambda ws: export()(ws) + ['--output_dir', os.path.join(ws.tmp, 'ro')], ['ro', 'writ'],
             read_only(lambda ws: os.path.join(ws.tmp, 'ro'))),
        # ---- COCO annotations
        Case('COCO keypoint visibility 3', 'val.py', val_coco(), ['person_keypoints_val2017.json', 'visib'],
             coco_annotation(first_person(lambda a: a.update(keypoints=[1, 1, 3] * 17)))),
        Case('COCO bbox of strings', 'val.py', val_coco(), ['person_keypoints_val2017.json', 'bbox'],
             coco_annotation(first_person(lambda a: a.update(bbox=['a', 'b', 'c', 'd'])))),
        Case('COCO 16 keypoints', 'val.py', val_coco(), ['person_keypoints_val2017.json', 'keypoints'],
             coco_annotation(first_person(lambda a: a.update(keypoints=[1, 1, 2] * 16)))),
        Case('gt_valid.mat of another size than valid.json', 'val.py', val(), ['gt_valid.mat', 'valid.json', '3 people'],
             lambda ws: _shrink_ground_truth(ws, 3)),
        Case('model_info.py --image_size 100 for hourglass', 'tools/model_info.py',
             lambda ws: ['--model', 'hourglass', '--image_size', '100'], ['multiples of 64']),
        # ---- converting weights
        Case('convert_weights source missing', 'tools/convert_weights.py',
             lambda ws: ['--format', 'princeton_hourglass', '--source', os.path.join(ws.tmp, 'checkpoint.pt'),
                         '--output', os.path.join(ws.tmp, 'out.pdparams')], ['checkpoint.pt']),
        Case('convert_weights source garbage', 'tools/convert_weights.py',
             lambda ws: ['--format', 'princeton_hourglass', '--source', os.path.join(ws.tmp, 'checkpoint.pt'),
                         '--output', os.path.join(ws.tmp, 'out.pdparams')], ['checkpoint.pt'],
             write_bytes(lambda ws: os.path.join(ws.tmp, 'checkpoint.pt'), b'garbage')),
    ]
    return cases


def _shrink_ground_truth(ws: Workspace, people: int) -> None:
    from scipy.io import loadmat, savemat
    path = os.path.join(ws.data, 'annot', 'gt_valid.mat')
    mat = loadmat(path)
    per_person = ('pos_gt_src', 'jnt_missing', 'headboxes_src')
    savemat(path, {key: mat[key][..., :people] if key in per_person else mat[key]
                   for key in mat if not key.startswith('__')})


def _write_preds(ws: Workspace, value: float, people: Optional[int] = None) -> None:
    from scipy.io import savemat
    with open(os.path.join(ws.data, 'annot', 'valid.json')) as f:
        count = people or len(json.load(f))
    savemat(os.path.join(ws.tmp, 'pred.mat'), {'preds': np.full((count, 16, 2), value)})


CASES = build_cases()


# ---- running a case as a user does -----------------------------------------------------------------------------

def run_in_process(case: Case, ws: Workspace) -> int:
    """main() of case.script behind run_cli, as `python <script>` runs it; SystemExit (argparse) counts."""
    import importlib
    from lib.utils.errors import run_cli
    module = importlib.import_module(case.script[:-3].replace('/', '.'))
    try:
        return run_cli(module.main, case.args(ws))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def run_as_process(case: Case, ws: Workspace) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, case.script, *case.args(ws)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def error_message(stderr: str) -> str:
    """The error message at the end of stderr: from the last line that starts with "error:" (run_cli) or
    "<script>.py: error:" (argparse) to the end."""
    lines = stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r'(\S+\.py: )?error: ', line)]
    return '\n'.join(lines[starts[-1]:] if starts else lines).strip()


def main(argv=None) -> int:
    """Each case in its own process: the table of exit codes and messages (Markdown)."""
    import tempfile
    from tests.bad_input_workspace import prepare_base, workspace_for
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--filter', default='', help='only cases whose name contains this')
    args = p.parse_args(argv)
    failures = 0
    with tempfile.TemporaryDirectory() as root:
        base = prepare_base(root)
        print('| # | bad input | script | exit | traceback | message (last line of stderr) |')
        print('|---|---|---|---|---|---|')
        for number, case in enumerate((c for c in CASES if args.filter in c.name), 1):
            ws = workspace_for(base, os.path.join(root, f'case{number}'))
            if case.spoil:
                case.spoil(ws)
            done = run_as_process(case, ws)
            output = done.stdout + done.stderr
            message = error_message(done.stderr)
            ok = (done.returncode != 0 and 'Traceback' not in output
                  and all(word in message for word in case.expect))
            failures += not ok
            shown = ' '.join(message.split()).replace('|', '\\|')
            print(f'| {number} | {case.name} | {case.script} | {done.returncode} | '
                  f'{"yes" if "Traceback" in output else "no"} | {shown}{"" if ok else " **(FAIL)**"} |', flush=True)
            release_mounts()
    print(f'{len(CASES) - failures if not args.filter else "-"} passed, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
