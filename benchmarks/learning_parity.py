"""Whole training runs side by side: train.py itself against a PyTorch run of the same recipe written as the
references write it (benchmarks/parity_reference.py), both in float32, from the same converted initial weights, fed
the same crops in the same order, with several seeds per side. Validation PCKh after every epoch, through the
project's evaluator for both. A figure for the README ("Does it reproduce?"), not a test; its short form is
tests/test_learning_parity.py.

    python benchmarks/learning_parity.py                                  # both recipes, 3 seeds a side
    python benchmarks/learning_parity.py --recipes synthetic --seeds 1 --epochs 4     # a short form

Recipes: the paper's training (2-stack hourglass, RMSprop 2.5e-4, MSE summed over the stacks, HRNet's augmentation
and flip test), narrowed to run on a CPU: 64 px crops and 16 px heatmaps (sigma 1), num_features 64. The reference's
PoseNet has a 128-channel stem whatever its width; here its stem is narrowed with it to num_features // 2, as ours.
    synthetic   drawn figures (tools/make_synthetic_mpii.py): train on `train`, validate on `valid`
    photos      the 269 real MPII people of ../shared/data/mpii (annot/valid_photos.json): split by photo into a
                training part and a held-out part; validation on the held-out part, and after the last epoch the
                fit of the training part (both sides should fit real photos equally well)

Seed s: the PyTorch PoseNet is initialised by PyTorch's default initialisation under torch.manual_seed(s) and
converted with the project's princeton-vl key map (train.py --init_weights); the sampler and the augmentation use
seed s on both sides. Verdict per recipe: the project's final Mean (mean over seeds) lies within the reference's
seed spread, |Δ| <= 2σ + 0.5 points, σ the standard deviation of the reference's final Means over seeds (ddof 1).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
warnings.filterwarnings('ignore', message='No ccache found')

import numpy as np  # noqa: E402

from benchmarks.machine import load_text  # noqa: E402

NUM_FEATURES = 64
RECIPE_FLAGS = ['--image_size', '64', '--num_stacks', '2', '--num_features', str(NUM_FEATURES), '--sigma', '1',
                '--optimizer', 'rmsprop', '--lr', '2.5e-4', '--stack_loss', 'sum']
RUN_FLAGS = ['--workers', '0', '--device', 'cpu', '--threads', '1', '--log_every', '1000']
# Sized for about 45 minutes in all on a 2-core CPU (one seed's two runs at a time, one thread each). The photos
# are decoded at a reduced resolution (--reduced_decode, the same crops for both sides): full-size JPEG decoding of
# 1280x720 photos for 64 px crops would bound both sides' speed.
DEFAULTS = {'synthetic': {'epochs': 30, 'batch_size': 16, 'num_train': 256, 'num_valid': 100, 'flags': []},
            'photos': {'epochs': 30, 'batch_size': 16, 'flags': ['--reduced_decode']}}
SHARED_DATA = os.environ.get('POSE_SHARED_DATA', os.path.join(REPO, '..', 'shared', 'data'))
HELD_OUT_EVERY = 4          # every 4th photo (sorted by name) is held out, with all its people


# ------------------------------------------------------------------------------------------------ data

def make_synthetic(root: str, num_train: int, num_valid: int) -> Dict[str, str]:
    from lib.datasets.synthetic import make_synthetic_mpii
    if not os.path.isfile(os.path.join(root, 'annot', 'valid.json')):
        make_synthetic_mpii(root, num_train=num_train, num_valid=num_valid, seed=7)
    return {'dataset_root': root, 'train_set': 'train', 'valid_set': 'valid', 'fit_set': ''}


def write_mpii_subset(root: str, name: str, entries: List[dict], gt: dict, columns: np.ndarray) -> None:
    """annot/<name>.json and annot/gt_<name>.mat: `entries` and the ground-truth columns of the same people."""
    from scipy.io import savemat
    with open(os.path.join(root, 'annot', f'{name}.json'), 'w') as f:
        json.dump(entries, f)
    savemat(os.path.join(root, 'annot', f'gt_{name}.mat'),
            {'dataset_joints': gt['dataset_joints'], 'jnt_missing': gt['jnt_missing'][:, columns],
             'pos_gt_src': gt['pos_gt_src'][:, :, columns], 'headboxes_src': gt['headboxes_src'][:, :, columns]})


def make_photos(root: str) -> Dict[str, str]:
    """photos_train and photos_heldout from the real photos' valid_photos set, split by photo."""
    from scipy.io import loadmat
    source = os.path.join(SHARED_DATA, 'mpii')
    if not os.path.isfile(os.path.join(source, 'annot', 'valid_photos.json')):
        raise SystemExit(f'the real photos are not at {source} (annot/valid_photos.json): set POSE_SHARED_DATA to '
                         'the folder that holds mpii/, or run --recipes synthetic')
    os.makedirs(os.path.join(root, 'annot'), exist_ok=True)
    if not os.path.exists(os.path.join(root, 'images')):
        os.symlink(os.path.abspath(os.path.join(source, 'images')), os.path.join(root, 'images'))
    with open(os.path.join(source, 'annot', 'valid_photos.json')) as f:
        entries = json.load(f)
    gt = loadmat(os.path.join(source, 'annot', 'gt_valid_photos.mat'))
    photos = sorted({entry['image'] for entry in entries})
    held_out = {photo for i, photo in enumerate(photos) if i % HELD_OUT_EVERY == 0}
    for name, keep in (('photos_train', lambda e: e['image'] not in held_out),
                       ('photos_heldout', lambda e: e['image'] in held_out)):
        columns = np.array([i for i, entry in enumerate(entries) if keep(entry)])
        write_mpii_subset(root, name, [entries[i] for i in columns], gt, columns)
    return {'dataset_root': root, 'train_set': 'photos_train', 'valid_set': 'photos_heldout',
            'fit_set': 'photos_train'}


# -------------------------------------------------------------------------------------------- one seed

def initial_weights(seed: int, folder: str) -> Dict[str, str]:
    """PyTorch's default initialisation of the narrowed PoseNet under seed `seed`: its state dict for the reference
    (init.pt) and the same weights under our names for train.py --init_weights (init.pdparams)."""
    import paddle
    import torch
    from benchmarks.torch_reference import PoseNet
    from lib.convert.common import apply_key_map
    from lib.convert.princeton_hourglass import key_map
    torch.manual_seed(seed)
    net = PoseNet(2, NUM_FEATURES, 16, stem=NUM_FEATURES // 2)
    paths = {'torch': os.path.join(folder, 'init.pt'), 'paddle': os.path.join(folder, 'init.pdparams')}
    torch.save(net.state_dict(), paths['torch'])
    source = {k: v.numpy() for k, v in net.state_dict().items()}
    ours, _ = apply_key_map(source, key_map(2, NUM_FEATURES, 16, stem_width=NUM_FEATURES // 2),
                            'the narrowed PoseNet')
    paddle.save({k: paddle.to_tensor(v) for k, v in ours.items()}, paths['paddle'])
    return paths


def run_seed(data: Dict[str, str], seed: int, epochs: int, batch_size: int, folder: str,
             extra_flags=()) -> Dict[str, dict]:
    """Both sides of one seed at once (one CPU thread each): per-epoch validation and the fit, per side."""
    shutil.rmtree(folder, ignore_errors=True)       # the benchmark's own folder: a rerun starts afresh
    os.makedirs(folder)
    init = initial_weights(seed, folder)
    flags = ['--dataset_root', data['dataset_root'], '--train_set', data['train_set'], '--valid_set',
             data['valid_set'], *RECIPE_FLAGS, '--epochs', str(epochs), '--batch_size', str(batch_size),
             '--seed', str(seed), *RUN_FLAGS, *extra_flags]
    ours_cmd = [sys.executable, os.path.join(REPO, 'train.py'), *flags, '--init_weights', init['paddle'],
                '--output_dir', folder, '--run_name', 'ours']
    reference_json = os.path.join(folder, 'reference.json')
    reference_cmd = [sys.executable, os.path.join(REPO, 'benchmarks', 'parity_reference.py'), '--init', init['torch'],
                     '--output', reference_json, '--fit_set', data['fit_set'], '--stem', str(NUM_FEATURES // 2),
                     '--', *flags]
    start = time.time()
    with open(os.path.join(folder, 'ours.log'), 'w') as ours_log, \
            open(os.path.join(folder, 'reference.log'), 'w') as reference_log:
        running = [subprocess.Popen(ours_cmd, stdout=ours_log, stderr=subprocess.STDOUT, cwd=REPO),
                   subprocess.Popen(reference_cmd, stdout=reference_log, stderr=subprocess.STDOUT, cwd=REPO)]
        codes = [process.wait() for process in running]
    if any(codes):
        raise SystemExit(f'seed {seed}: train.py exited {codes[0]}, the reference {codes[1]}; see {folder}/*.log')
    ours = {'history': project_history(os.path.join(folder, 'ours', 'checkpoint.pdparams')), 'fit': None}
    if data['fit_set']:
        ours['fit'] = project_fit(os.path.join(folder, 'ours', 'checkpoint.pdparams'), data, os.path.join(folder, 'fit'))
    with open(reference_json) as f:
        reference = json.load(f)
    return {'ours': ours, 'reference': reference, 'seconds': time.time() - start}


def project_history(checkpoint: str) -> List[dict]:
    from lib.utils.checkpoint import load_file
    return [row for row in load_file(checkpoint)['train_state']['history'] if 'Mean' in row]


def project_fit(checkpoint: str, data: Dict[str, str], output_dir: str) -> dict:
    """val.py on the training part with the last epoch's weights (the run's checkpoint), as a user runs it."""
    subprocess.run([sys.executable, os.path.join(REPO, 'val.py'), '--pretrained_model', checkpoint, '--dataset_root',
                    data['dataset_root'], '--valid_set', data['fit_set'], '--output_dir', output_dir, '--workers', '0',
                    '--device', 'cpu'], check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(output_dir, 'results.json')) as f:
        return json.load(f)['metrics']


# --------------------------------------------------------------------------------------------- report

def spread(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    sd = values.std(ddof=1) if len(values) > 1 else float('nan')
    return f'{values.mean():.2f} ± {sd:.2f}' if len(values) > 1 else f'{values.mean():.2f}'


def verdict(ours: List[float], reference: List[float]) -> dict:
    """|mean(ours) - mean(reference)| <= 2 sd(reference) + 0.5 (final Means over seeds)."""
    delta = float(np.mean(ours) - np.mean(reference))
    sd = float(np.std(reference, ddof=1)) if len(reference) > 1 else float('nan')
    bound = 2 * sd + 0.5
    return {'delta': delta, 'reference_sd': sd, 'bound': bound, 'within': bool(abs(delta) <= bound)}


def recipe_table(name: str, seeds: Dict[int, dict]) -> str:
    runs = list(seeds.values())
    epochs = len(runs[0]['ours']['history'])
    lines = [f'{name}: validation Mean (PCKh@0.5) per epoch, mean ± sd over seeds {sorted(seeds)}',
             '| epoch | train.py (Paddle) | reference (PyTorch) |', '|---|---|---|']
    for e in range(epochs):
        lines.append(f'| {e + 1} | {spread([r["ours"]["history"][e]["Mean"] for r in runs])} | '
                     f'{spread([r["reference"]["history"][e]["Mean"] for r in runs])} |')
    finals = {side: [r[side]['history'][-1]['Mean'] for r in runs] for side in ('ours', 'reference')}
    lines.append(f'| final Mean@0.1 | {spread([r["ours"]["history"][-1]["Mean@0.1"] for r in runs])} | '
                 f'{spread([r["reference"]["history"][-1]["Mean@0.1"] for r in runs])} |')
    if runs[0]['ours']['fit']:
        lines.append(f'| fit of the training part (Mean) | {spread([r["ours"]["fit"]["Mean"] for r in runs])} | '
                     f'{spread([r["reference"]["fit"]["Mean"] for r in runs])} |')
    lines.append('per seed, final Mean (train.py / reference): ' + ', '.join(
        f'{s}: {r["ours"]["history"][-1]["Mean"]:.2f} / {r["reference"]["history"][-1]["Mean"]:.2f}'
        for s, r in sorted(seeds.items())))
    v = verdict(finals['ours'], finals['reference'])
    lines.append(f'verdict: Δ final Mean {v["delta"]:+.2f}, bound 2σ + 0.5 = {v["bound"]:.2f} '
                 f'-> {"WITHIN the reference spread" if v["within"] else "OUTSIDE the reference spread"}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--recipes', nargs='+', default=['synthetic', 'photos'], choices=sorted(DEFAULTS))
    p.add_argument('--seeds', type=int, default=3, help='seeds per side: first_seed .. first_seed + N - 1')
    p.add_argument('--first_seed', type=int, default=0)
    p.add_argument('--epochs', type=int, help='epochs per run (default: the recipe\'s, 30)')
    p.add_argument('--work_dir', default=os.path.join('output', 'learning_parity'))
    args = p.parse_args(argv)
    start, results = time.time(), {}
    print(f'learning parity, {", ".join(args.recipes)}, {args.seeds} seed(s) a side; {load_text()}', flush=True)
    for name in args.recipes:
        settings = DEFAULTS[name]
        root = os.path.join(args.work_dir, f'{name}_data')
        data = (make_synthetic(root, settings['num_train'], settings['num_valid']) if name == 'synthetic'
                else make_photos(root))
        epochs = args.epochs or settings['epochs']
        seeds = {}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            seeds[seed] = run_seed(data, seed, epochs, settings['batch_size'],
                                   os.path.join(args.work_dir, name, f'seed{seed}'), settings['flags'])
            print(f'{name} seed {seed}: {seeds[seed]["seconds"]:.0f} s, final Mean train.py '
                  f'{seeds[seed]["ours"]["history"][-1]["Mean"]:.2f} / reference '
                  f'{seeds[seed]["reference"]["history"][-1]["Mean"]:.2f}', flush=True)
        results[name] = {'epochs': epochs, 'settings': settings, 'seeds': seeds,
                         'verdict': verdict([r['ours']['history'][-1]['Mean'] for r in seeds.values()],
                                            [r['reference']['history'][-1]['Mean'] for r in seeds.values()])}
        print('\n' + recipe_table(name, seeds) + '\n', flush=True)
    minutes = (time.time() - start) / 60
    print(f'{minutes:.1f} min in all; {load_text()}')
    with open(os.path.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump({'results': results, 'minutes': minutes, 'command': ' '.join(sys.argv)}, f, indent=1)
    print(f'Wrote {os.path.join(args.work_dir, "results.json")}')
    return 0 if all(r['verdict']['within'] or args.seeds < 2 for r in results.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
