r"""Train a Stacked Hourglass network (Newell et al., ECCV 2016) or SimpleBaselines on MPII or COCO with Paddle.

    python train.py --image_size 256 --dataset_root data/mpii
    nohup python -u train.py --image_size 256 --dataset_root data/mpii > hg256.log &
    python train.py --dataset coco --model pose_resnet_50 --image_size 256x192 --dataset_root data/coco \
        --pretrained_backbone resnet50.pdparams
    python train.py --resume output/mpii_hourglass8_256x256/checkpoint.pdparams   # continue a run

Every epoch ends with a resumable checkpoint; the model with the best validation score (MPII: Mean, i.e.
PCKh@0.5; COCO: AP with ground-truth boxes; flip test) is kept as <run dir>/best_model/model.pdparams.
SIGTERM or Ctrl-C saves a checkpoint first. The configuration is the preset configs/<dataset>/<model>.yaml
under --config FILE, the flags and --set key=value (README, "Configuration"); --print_config shows it.
"""
import argparse
import contextlib
import dataclasses
import os
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
warnings.filterwarnings('ignore', message='When training, we now always track')
from lib.utils.errors import run_cli  # noqa: E402
from lib.utils.threads import default_threads, set_mkl_cpu_type, use_cpu_threads  # noqa: E402
set_mkl_cpu_type()     # before Paddle loads MKL: its AVX2 path on AMD CPUs (lib/utils/threads.py)
import paddle  # noqa: E402

from lib.cli import (DEBUG_IMAGE_FLAGS, TRAINING_GROUPS, add_front_door, flag_values, print_config,  # noqa: E402
                     script_parser)
from lib.config import TrainConfig, resolve_config  # noqa: E402
from lib.core.engine import describe_best, train_one_epoch  # noqa: E402
from lib.core.evaluators import build_evaluator  # noqa: E402
from lib.core.run import (RunControl, build_training, close_epoch, load_resume_checkpoint, log_start,  # noqa: E402
                          new_run_dir, open_run_folder, resumed_config)
from lib.datasets.loaders import build_dataset, eval_loader, train_loader  # noqa: E402
from lib.models import check_model  # noqa: E402
from lib.utils.device import select_device, use_deterministic_kernels  # noqa: E402
from lib.utils.distributed import average_running_statistics, init_distributed, max_difference_across_ranks  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402
from lib.utils.run_lock import RunLock  # noqa: E402
from lib.vis.monitor import RunMonitor  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p, preset = script_parser(__doc__, argv)
    for part, _, text in DEBUG_IMAGE_FLAGS:
        p.add_argument(f'--save_{part}', action='store_true', help=f'write {text} to <run>/debug at each log line')
    p.add_argument('--run_name', help='run folder name (default <dataset>_<model>_<H>x<W>, e.g. '
                   'mpii_hourglass8_256x256, coco_pose_resnet_50_256x192)')
    p.add_argument('--resume', help='checkpoint.pdparams (or its run folder) to continue; only --epochs, '
                   '--max_iters, --workers, --eval_every, --log_every, --log_seconds, --device, --use_vdl and the '
                   '--save_* pictures may change (as flags or --set)')
    add_front_door(p, TRAINING_GROUPS, preset)      # unset flags are None: the preset (or a resumed run) decides
    return p.parse_args(argv)


def flags_of(args: argparse.Namespace) -> dict:
    """{config key: value} of the flags given (lib/cli.flag_values), with --save_* as debug_images."""
    parts = tuple(name for part, name, _ in DEBUG_IMAGE_FLAGS if getattr(args, f'save_{part}'))
    return {**flag_values(args, TRAINING_GROUPS), 'debug_images': parts or None}


def build_config(args: argparse.Namespace) -> TrainConfig:
    """preset of (dataset, model, input size) <- --config <- flags <- --set (lib/config.resolve_config)."""
    config = resolve_config(flags_of(args), config_file=args.config, sets=args.set)
    check_model(config)             # wrong sizes or options fail here, before any data is read
    return config


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint, run_dir = None, None
    if args.resume:
        checkpoint, path = load_resume_checkpoint(args.resume)
        config = resumed_config(checkpoint, path, flags_of(args), args.set, args.config)
        run_dir = os.path.dirname(os.path.abspath(path))
    else:
        config = build_config(args)
    if args.print_config:
        return print_config(config)
    run_dir = run_dir or new_run_dir(config, args.run_name)
    rank, num_ranks = init_distributed()
    if rank == 0:
        require_writable_dir(run_dir, 'the run folder (--output_dir/--run_name)')
    # One run per folder: rank 0 takes the folder's lock before it writes anything there, and drops it on exit.
    with RunLock(run_dir) if rank == 0 else contextlib.nullcontext():
        return run_training(config, checkpoint, run_dir, rank, num_ranks, args.threads)


def build_data(config: TrainConfig, num_ranks: int, rank: int):
    """(training set, its loader, the validation loader, the evaluator of the validation set)."""
    train_set = build_dataset(config.data, config.data.train_set, is_train=True)
    # Validation crops stay exactly HRNet's: reduced decoding is for training only.
    valid_set = build_dataset(dataclasses.replace(config.data, reduced_decode=False), config.data.valid_set,
                              is_train=False, test=config.test)
    evaluator = build_evaluator(config.data, config.data.valid_set, valid_set.records, config.test)
    loader = train_loader(train_set, config.batch_size, config.workers, config.seed, num_ranks, rank)
    return train_set, loader, eval_loader(valid_set, config.test.batch_size, config.workers), evaluator


def run_epoch(training, loader, state, stop):
    """(mean loss, stopped, seconds) of one epoch from where the state stands."""
    loader.batch_sampler.set_epoch(state.epoch, start_batch=state.iteration)
    start = time.time()
    try:
        loss, stopped = train_one_epoch(training, loader, state, stop)
    except Exception:
        if not stop():      # loader workers may die on Ctrl-C; the weights are still consistent
            raise
        loss, stopped = float('nan'), True
    return loss, stopped, time.time() - start


def run_training(config: TrainConfig, checkpoint, run_dir: str, rank: int, num_ranks: int, threads_flag=None) -> int:
    is_main = rank == 0                      # only rank 0 logs to the file and writes checkpoints
    logger = open_run_folder(config, run_dir, is_main)
    device = select_device(config.device)
    use_deterministic_kernels(config.deterministic)     # before the model is built
    threads = use_cpu_threads(threads_flag or max(1, default_threads() // num_ranks))   # ranks share the cores
    log_start(logger, config, run_dir, device, num_ranks, threads)

    paddle.seed(config.seed)
    train_set, loader, val_loader, evaluator = build_data(config, num_ranks, rank)
    logger.info('Loaded %d training and %d validation samples', len(train_set), len(val_loader.dataset))
    epoch_len = len(loader.batch_sampler)
    model, training, state = build_training(config, checkpoint, epoch_len, num_ranks, logger, evaluator.indicator)
    monitor = (RunMonitor(run_dir, config.data, train_set.layout, config.debug_images, config.use_vdl,
                          evaluator.indicator, logger) if is_main else None)
    training.on_log = monitor.on_train_log if is_main else None

    control = RunControl(config, run_dir, model, training, state, val_loader, evaluator, monitor, logger, is_main)
    with control.stop as stop:
        if state.pending_validation:    # a stop cut it short: these weights are validated before training on
            logger.info('Running the validation of epoch %d that a stop interrupted', state.pending_validation)
            control.validate(state.history[-1])
            if control.end_of_epoch():
                return control.exit_code
        while state.epoch < config.epochs and state.global_step < training.total_iters:
            loss, stopped, seconds = run_epoch(training, loader, state, stop)
            if num_ranks > 1:
                average_running_statistics(model, num_ranks)
            if stopped:
                return control.stopped_in_epoch()
            row = close_epoch(state, loss, epoch_len, seconds, training.optimizer)
            if control.validation_due(row):
                control.validate(row)
            state.history.append(row)
            if control.end_of_epoch():
                return control.exit_code
    if state.applied_steps == 0:
        logger.error('No training step was applied in %d iterations: every loss or gradient was non-finite. No '
                     'model was kept. Lower --lr, check the data, or train without --amp.', state.global_step)
        return 1
    if num_ranks > 1:
        difference = max_difference_across_ranks(list(model.state_dict().values()))
        logger.info('Weights and statistics on the %d ranks differ by at most %g', num_ranks, difference)
    logger.info('Done: %d iterations, %s. Weights: %s', state.global_step, describe_best(evaluator.indicator, state),
                os.path.join(run_dir, 'best_model', 'model.pdparams'))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
