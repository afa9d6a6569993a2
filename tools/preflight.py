r"""One minute on your own device before a multi-day run: does the training step compute what it should here, does
the preset fit, and what bounds its speed. Takes train.py's flags and configuration (the same preset, --config,
--set), so run it with the command you are about to train with:

    python tools/preflight.py --image_size 256 --dataset_root data/mpii
    python tools/preflight.py --model hourglass52 --image_size 384 --dataset_root data/mpii --amp fp16
    python tools/preflight.py --dataset coco --model pose_resnet_50 --dataset_root data/coco

It prints a table and writes it as JSON (--output; attach it to a bug report). Checks (the run exits 1 when one
fails, naming it and what to do): the optimizer's update on this device against the paper's formula in float64 at
gradients 1e-2 ... 1e-8 (rmsprop and adam); the BatchNorm running variance against the unbiased numpy value; a
forced non-finite step leaving weights, statistics and optimizer state bit-identical, in each precision the device
runs; fp16's loss scale halving on an overflow; one host synchronisation and no host-to-device copy per step; free
shared memory for the loader. Measures: peak memory of a training step (on a GPU at the configured batch),
training-step throughput, the data pipeline's samples/s per worker and whether the run is data- or compute-bound.

Does it learn on my data: --overfit K (default 16) also trains the configured model on K people of your training
set (--train_set) for --overfit_iters iterations and checks that it fits them (lib/preflight/overfit.py: target
weights not all zero, the loss falls, predictions not stuck at one place, eval-mode output close to train-mode
output, mirrored crops agree with the joint order, training accuracy above the bar); --overfit_only runs that part
alone:

    python tools/preflight.py --overfit --overfit_only --dataset_root data/mpii --image_size 64 --num_stacks 1
"""
import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # run as a script from anywhere
warnings.filterwarnings('ignore', message='No ccache found')
warnings.filterwarnings('ignore', message='When training, we now always track')
warnings.filterwarnings('ignore', message='amp_guard can only be enabled')
from lib.utils.errors import run_cli  # noqa: E402
from lib.utils.threads import default_threads, set_mkl_cpu_type, use_cpu_threads  # noqa: E402
set_mkl_cpu_type()     # before Paddle loads MKL, as train.py
import paddle  # noqa: E402,F401

from lib.cli import TRAINING_GROUPS, add_front_door, flag_values, print_config, script_parser  # noqa: E402
from lib.config import resolve_config, to_dict  # noqa: E402
from lib.core.run import default_run_name  # noqa: E402
from lib.models import check_model  # noqa: E402
from lib.preflight import failures, findings_table, write_report  # noqa: E402
from lib.preflight.overfit import DEFAULT_ITERATIONS, DEFAULT_PEOPLE, overfit_check  # noqa: E402
from lib.preflight.run import command_line, environment, environment_line, run_preflight  # noqa: E402
from lib.utils.device import select_device, use_deterministic_kernels  # noqa: E402
from lib.utils.errors import BadValue  # noqa: E402
from lib.utils.logger import setup_logger  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p, preset = script_parser(__doc__, argv)
    group = p.add_argument_group('preflight')
    group.add_argument('--output', help='JSON report (default output/preflight/<run name>.json)')
    group.add_argument('--measure_batch', type=int, help='batch of the memory / throughput step (default: the '
                       'configured batch on a GPU, 1 on a CPU)')
    group.add_argument('--full_batch', action='store_true', help='measure at the configured batch on a CPU too')
    group.add_argument('--seconds', type=float, default=3.0, help='time budget of each measurement')
    group.add_argument('--overfit', type=int, nargs='?', const=DEFAULT_PEOPLE, metavar='K',
                       help=f'also train on K people of --train_set and check that they are learned (default K '
                       f'{DEFAULT_PEOPLE})')
    group.add_argument('--overfit_iters', type=int, default=DEFAULT_ITERATIONS,
                       help='training iterations of --overfit (default %(default)s)')
    group.add_argument('--overfit_first', type=int, default=0, help='--overfit takes the people from this index of '
                       'the set on (default 0)')
    group.add_argument('--overfit_only', action='store_true', help='run the --overfit check alone')
    add_front_door(p, TRAINING_GROUPS, preset)      # train.py's flags: unset ones are the preset's
    return p.parse_args(argv)


def check_overfit_flags(args: argparse.Namespace) -> None:
    if args.overfit_only and not args.overfit:
        args.overfit = DEFAULT_PEOPLE
    for flag, value, least in (('--overfit', args.overfit, 1), ('--overfit_iters', args.overfit_iters, 1),
                               ('--overfit_first', args.overfit_first, 0)):
        if value is not None and value < least:
            raise BadValue(f'{flag} must be >= {least}; received {value}. E.g. --overfit 16 --overfit_iters '
                           f'{DEFAULT_ITERATIONS}.')


def main(argv=None) -> int:
    args = parse_args(argv)
    config = resolve_config(flag_values(args, TRAINING_GROUPS), config_file=args.config, sets=args.set)
    check_model(config)
    if args.print_config:
        return print_config(config)
    if args.measure_batch is not None and args.measure_batch < 1:
        raise BadValue(f'--measure_batch must be >= 1; received {args.measure_batch}.')
    check_overfit_flags(args)
    setup_logger(None)
    device = select_device(config.device)
    threads = use_cpu_threads(args.threads or default_threads())
    use_deterministic_kernels(config.deterministic)
    env = environment(device, threads)
    print(environment_line(env), flush=True)
    progress = lambda text: print(f'  {text}', flush=True)  # noqa: E731
    findings = [] if args.overfit_only else run_preflight(
        config, device, config.batch_size if args.full_batch else args.measure_batch, args.seconds, progress)
    if args.overfit:
        findings += overfit_check(config, args.overfit, args.overfit_iters, args.overfit_first, progress)
    output = args.output or os.path.join(config.output_dir, 'preflight', f'{default_run_name(config)}.json')
    write_report(output, env, to_dict(config), findings, command_line())
    print(f'\nPreflight of {config.model.label} at {config.data.input_wh[1]}x{config.data.input_wh[0]}, batch '
          f'{config.batch_size}, --amp {config.amp} {config.amp_level}, --optimizer {config.optimizer}:\n')
    print(findings_table(findings))
    source = next((f.data.get('source', '') for f in findings if f.check == 'data pipeline per worker'), '')
    if source.startswith('no training set'):
        print(f'\nNote: {source.split(":")[0]}: the data-pipeline rows used generated images; pass the --dataset_root '
              'you will train with to measure your own data.')
    print(f'\nWrote {output}')
    failed = failures(findings)
    for finding in failed:
        print(f'FAILED: {finding.check}: {finding.value}. {finding.fix}', file=sys.stderr)
    if failed:
        print(f'{len(failed)} check(s) failed on this device: do not start the long run before they are fixed; '
              f'attach {output} to a bug report.', file=sys.stderr)
        return 1
    print('All invariants hold on this device.')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
