"""val.py's speed with one CPU thread and with its default (the cores available to the process): samples/s as
val.py itself logs it (its last `predict [n/n] ... samples/s` line: data loading, flip-tested forward passes and
decoding) and the wall time of the whole process. A figure, not a test.

    python benchmarks/val_threads.py                       # hourglass, 2 stacks, 256 px, 32 synthetic people
    python benchmarks/val_threads.py --model pose_resnet_50 --num_people 64 --threads 1 2 4

The weights are untrained (speed does not depend on them) and the people are synthetic MPII ones
(tools/make_synthetic_mpii.py); val.py runs in a fresh process per row with --val_batch_size 32 and
--workers 2 (its defaults when these rows were first measured), flip test on, and the flags shown. OMP_NUM_THREADS is removed from the
environment, so that the default row uses every usable core.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

# Run as `python benchmarks/val_threads.py`: Python puts benchmarks/, not the repo root, on sys.path.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds

from benchmarks.machine import cpu_name, load_text  # noqa: E402

SPEED = re.compile(r'predict \[(\d+)/(\d+)\] ([\d.]+) samples/s')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='hourglass')
    p.add_argument('--num_stacks', type=int, default=2, help="'hourglass' only (default 2)")
    p.add_argument('--image_size', default='256')
    p.add_argument('--num_people', type=int, default=32, help='synthetic validation people (default 32)')
    p.add_argument('--threads', type=int, nargs='+', default=[1, 0],
                   help='one row per value; 0 = no --threads flag, val.py\'s default (default: 1 0)')
    args = p.parse_args(argv)
    if args.num_people < 1 or min(args.threads) < 0:
        p.error(f'--num_people must be >= 1 and --threads >= 0; received {args.num_people} and {args.threads}.')
    return args


def untrained_weights(args, folder: str) -> str:
    """Seeded random weights of the model, saved as train.py saves best_model/model.pdparams."""
    import paddle
    from lib.config import ModelConfig
    from lib.models import build_model_from
    from lib.utils.checkpoint import save_weights
    paddle.seed(0)
    model = build_model_from(ModelConfig(args.model, num_stacks=args.num_stacks if args.model == 'hourglass' else 0))
    path = os.path.join(folder, 'model.pdparams')
    save_weights(model, path)
    return path


def run_val(flags, threads: int, output_dir: str) -> dict:
    command = [sys.executable, 'val.py', *flags, '--output_dir', output_dir]
    if threads:
        command += ['--threads', str(threads)]
    env = {key: value for key, value in os.environ.items() if key != 'OMP_NUM_THREADS'}
    load_before, start = load_text(), time.time()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.time() - start
    if done.returncode:
        raise RuntimeError(f'val.py exited with {done.returncode}:\n{done.stderr[-3000:]}')
    speeds = SPEED.findall(done.stderr)
    if not speeds or speeds[-1][0] != speeds[-1][1]:
        raise RuntimeError(f'no final "predict [n/n] ... samples/s" line in val.py\'s stderr:\n{done.stderr[-3000:]}')
    return {'command': ' '.join(['python', *map(shlex.quote, command[1:])]), 'samples_per_s': float(speeds[-1][2]),
            'seconds': seconds, 'load': f'{load_before} -> {load_text()}'}


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f'command: python benchmarks/val_threads.py {shlex.join(argv if argv is not None else sys.argv[1:])}')
    print(f'{cpu_name()}, {len(os.sched_getaffinity(0))} usable cores; load (1/5/15 min) {load_text()}')
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'data')
        subprocess.run([sys.executable, 'tools/make_synthetic_mpii.py', '--output', data, '--num_train', '1',
                        '--num_valid', str(args.num_people)], cwd=REPO, check=True, capture_output=True)
        weights = untrained_weights(args, tmp)
        flags = ['--dataset_root', data, '--pretrained_model', weights, '--model', args.model,
                 '--image_size', args.image_size, '--device', 'cpu', '--val_batch_size', '32', '--workers', '2']
        if args.model == 'hourglass':
            flags += ['--num_stacks', str(args.num_stacks)]
        rows = [(threads, run_val(flags, threads, os.path.join(tmp, f'val{threads}'))) for threads in args.threads]
    print('\n| val.py threads | samples/s | wall s (whole process) | load before -> after |')
    print('|---|---|---|---|')
    for threads, row in rows:
        name = str(threads) if threads else f'default ({len(os.sched_getaffinity(0))})'
        print(f'| {name} | {row["samples_per_s"]:.2f} | {row["seconds"]:.1f} | {row["load"]} |')
    for threads, row in rows:
        print(f'  {row["command"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
