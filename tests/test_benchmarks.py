"""The benchmark scripts run end to end on their smallest settings and print a table row with a positive
samples/s (the figures themselves are not checked: they depend on the machine and its load)."""
import os
import subprocess
import sys
from typing import List

from tests.helpers import REPO, require_real_mpii


def run_benchmark(script: str, *options: str) -> str:
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    done = subprocess.run([sys.executable, os.path.join('benchmarks', script), *options], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (f'{script} exited with {done.returncode}:\n'
                                  f'{done.stdout[-3000:]}\n{done.stderr[-3000:]}')
    return done.stdout


def table_column(stdout: str, header: str) -> List[str]:
    """The cells under `header` in the printed Markdown table (one per data row)."""
    lines = [line for line in stdout.splitlines() if line.startswith('|')]
    names = [cell.strip() for cell in lines[0].strip('|').split('|')]
    column = next(i for i, name in enumerate(names) if name.startswith(header))
    return [[cell.strip() for cell in line.strip('|').split('|')][column] for line in lines[2:]]


def test_train_step_tiny_hourglass():
    stdout = run_benchmark('train_step.py', '--models', 'hourglass', '--num_stacks', '1', '--num_features', '16',
                           '--image_sizes', '64', '--batch_sizes', '2', '--iters', '1', '--warmup', '0',
                           '--device', 'cpu')
    assert 'command: python benchmarks/train_step.py --models hourglass' in stdout
    assert table_column(stdout, 'model') == ['hourglass1']
    samples_per_second = table_column(stdout, 'samples/s')
    assert float(samples_per_second[0]) > 0, stdout
    assert float(table_column(stdout, 'TFLOP/s')[0]) >= 0


def test_data_pipeline_smallest():
    stdout = run_benchmark('data_pipeline.py', '--image_sizes', '64', '--num_images', '2', '--image_wh', '160', '120',
                           '--box_h_range', '40', '100', '--reduced_decode', 'off', '--seconds', '0.2',
                           '--warmup', '1')
    samples_per_second = table_column(stdout, 'samples/s')
    assert len(samples_per_second) == 1 and float(samples_per_second[0]) > 0, stdout


def test_data_pipeline_on_the_real_photos():
    root = require_real_mpii()
    stdout = run_benchmark('data_pipeline.py', '--dataset_root', root, '--train_set', 'valid_photos', '--num_images',
                           '4', '--image_sizes', '64', '--seconds', '0.2', '--warmup', '1')
    assert f'4 records of {root}/annot/valid_photos.json on 4 images, crop sides ' in stdout
    assert table_column(stdout, 'reduced_decode') == ['off', 'on']
    assert all(float(value) > 0 for value in table_column(stdout, 'samples/s') + table_column(stdout, 'decode-only '
                                                                                              'images/s')), stdout


def test_val_threads_smallest():
    stdout = run_benchmark('val_threads.py', '--num_stacks', '1', '--image_size', '64', '--num_people', '2')
    assert 'command: python benchmarks/val_threads.py --num_stacks 1' in stdout
    threads = table_column(stdout, 'val.py threads')
    assert threads[0] == '1' and threads[1].startswith('default ('), stdout
    assert all(float(value) > 0 for value in table_column(stdout, 'samples/s')), stdout
    assert '--threads 1' in stdout.splitlines()[-2] and '--threads' not in stdout.splitlines()[-1]
