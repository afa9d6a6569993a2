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
import json
import os
import random
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
warnings.filterwarnings('ignore', message='When training, we now always track')
from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.utils.threads import add_threads_argument, default_threads, set_mkl_cpu_type, use_cpu_threads  # noqa: E402
set_mkl_cpu_type()     # before Paddle loads MKL: its AVX2 path on AMD CPUs (lib/utils/threads.py)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from lib.cli import (DEBUG_IMAGE_FLAGS, TRAIN_FLAGS, add_config_arguments, add_flags, chosen_preset,  # noqa: E402
                     defaults_note, flag_values)
from lib.config import TrainConfig, dump_yaml, resolve_config, to_dict  # noqa: E402
from lib.core.engine import describe_best, train_one_epoch  # noqa: E402
from lib.core.evaluators import build_evaluator  # noqa: E402
from lib.core.run import (build_training, close_epoch, default_run_name, load_resume_checkpoint,  # noqa: E402,F401
                          new_run_dir, resumed_config, save_checkpoint, validate_and_keep_best)
from lib.datasets.loaders import build_dataset, eval_loader, train_loader  # noqa: E402
from lib.models import check_input_size, model_options  # noqa: E402
from lib.utils.checkpoint import remove_stale_temporaries  # noqa: E402
from lib.utils.device import select_device, use_deterministic_kernels  # noqa: E402
from lib.utils.distributed import (any_rank, average_running_statistics, barrier, init_distributed,  # noqa: E402
                                   max_difference_across_ranks)
from lib.utils.files import require_writable_dir, write_json  # noqa: E402
from lib.utils.logger import setup_logger  # noqa: E402
from lib.utils.monitor import RunMonitor  # noqa: E402
from lib.utils.run_lock import RunLock  # noqa: E402
from lib.utils.signals import GracefulStop  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    preset = chosen_preset(argv)
    p = argparse.ArgumentParser(description=f'{__doc__}\n{defaults_note(preset)}',
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, TRAIN_FLAGS, preset)       # unset flags are None: the preset (or a resumed run) decides
    for part, _, text in DEBUG_IMAGE_FLAGS:
        p.add_argument(f'--save_{part}', action='store_true', help=f'write {text} to <run>/debug at each log line')
    p.add_argument('--run_name', help='run folder name (default <dataset>_<model>_<H>x<W>, e.g. '
                   'mpii_hourglass8_256x256, coco_pose_resnet_50_256x192)')
    p.add_argument('--resume', help='checkpoint.pdparams (or its run folder) to continue')
    add_threads_argument(p)
    add_config_arguments(p)
    add_debug_argument(p)
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """preset of (dataset, model, input size) <- --config <- flags <- --set (lib/config.resolve_config)."""
    parts = tuple(name for part, name, _ in DEBUG_IMAGE_FLAGS if getattr(args, f'save_{part}'))
    flags = {**flag_values(args, TRAIN_FLAGS), 'debug_images': parts or None}
    config = resolve_config(flags, config_file=args.config, sets=args.set)
    check_input_size(config.model.name, config.data.input_wh)
    model_options(config.model)             # wrong options fail here, before any data is read
    return config


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint, run_dir = None, None
    if args.resume:
        checkpoint, path = load_resume_checkpoint(args.resume)
        config = resumed_config(checkpoint, path, flag_values(args, TRAIN_FLAGS), args.set, args.config)
        run_dir = os.path.dirname(os.path.abspath(path))
    else:
        config = build_config(args)
    if args.print_config:
        print(dump_yaml(to_dict(config)), end='')
        return 0
    run_dir = run_dir or new_run_dir(config, args.run_name)
    rank, num_ranks = init_distributed()
    if rank == 0:
        require_writable_dir(run_dir, 'the run folder (--output_dir/--run_name)')
    # One run per folder: rank 0 takes the folder's lock before it writes anything there, and drops it on exit.
    with RunLock(run_dir) if rank == 0 else contextlib.nullcontext():
        return run_training(config, checkpoint, run_dir, rank, num_ranks, args.threads)


def run_training(config: TrainConfig, checkpoint, run_dir: str, rank: int, num_ranks: int, threads_flag=None) -> int:
    is_main = rank == 0                      # only rank 0 logs to the file and writes checkpoints
    if is_main:
        leftovers = [path for folder in (run_dir, os.path.join(run_dir, 'best_model'))
                     for path in remove_stale_temporaries(folder)]     # of a run killed while saving
        os.makedirs(run_dir, exist_ok=True)
        write_json(os.path.join(run_dir, 'config.json'), to_dict(config))
    logger = setup_logger(os.path.join(run_dir, 'train.log') if is_main else None, quiet=not is_main)
    if is_main and leftovers:
        logger.info('Removed %d temporary file(s) of a run killed while saving: %s', len(leftovers),
                    ', '.join(leftovers))
    device = select_device(config.device)
    use_deterministic_kernels(config.deterministic)     # before the model is built
    threads = use_cpu_threads(threads_flag or max(1, default_threads() // num_ranks))   # ranks share the cores
    logger.info('Run folder %s, device %s x %d process(es), %d CPU threads, Paddle %s', run_dir, device, num_ranks,
                threads, paddle.__version__)
    logger.info('Config: %s', json.dumps(to_dict(config)))

    random.seed(config.seed)
    np.random.seed(config.seed)
    paddle.seed(config.seed)
    train_set = build_dataset(config.data, config.data.train_set, is_train=True)
    # Validation crops stay exactly HRNet's: reduced decoding is for training only.
    valid_set = build_dataset(dataclasses.replace(config.data, reduced_decode=False), config.data.valid_set,
                              is_train=False, test=config.test)
    evaluator = build_evaluator(config.data, config.data.valid_set, valid_set.records, config.test)
    loader = train_loader(train_set, config.batch_size, config.workers, config.seed, num_ranks, rank)
    val_loader = eval_loader(valid_set, config.test.batch_size, config.workers)
    logger.info('Loaded %d training and %d validation samples', len(train_set), len(valid_set))
    epoch_len = len(loader.batch_sampler)
    model, training, state = build_training(config, checkpoint, epoch_len, num_ranks, logger, evaluator.indicator)
    monitor = (RunMonitor(run_dir, config.data, train_set.layout, config.debug_images, config.use_vdl,
                           evaluator.indicator)
               if is_main else None)
    training.on_log = monitor.on_train_log if is_main else None

    validating = 0          # the epoch whose validation is running (0: none), for on_signal's line

    def on_signal(name):
        if validating:
            logger.info('Received %s: stopping the validation of epoch %d after its current batch and saving a '
                        'checkpoint; Ctrl-C again stops at once.', name, validating)
            return
        logger.info('Received %s: stopping after the current iteration (epoch %d, iteration %d) and saving a '
                    'checkpoint; Ctrl-C again stops at once.', name, state.epoch + 1, state.iteration + 1)

    def validate(row: dict) -> None:
        """The epoch's validation into its history row; a stop ends it unfinished (lib/core/run.py)."""
        nonlocal validating
        if is_main:     # every rank holds the same weights; one validation is enough
            validating = row['epoch']
            row.update(validate_and_keep_best(model, val_loader, evaluator, config, state, row['epoch'], run_dir,
                                              logger, training.precision, monitor, stop))
            validating = 0
        barrier()

    def end_of_epoch() -> bool:
        """Checkpoint and curves; True when a stop came after the epoch's last iteration (during validation)."""
        if is_main:
            path = save_checkpoint(run_dir, model, training.optimizer, training.scheduler, state, config)
            monitor.on_epoch_end(state.history, state)
        if not any_rank(stop()):
            return False
        if is_main:
            logger.info('Stopped by %s after epoch %d. Resume with: python train.py --resume %s',
                        stop.signal_name or 'a signal to another rank', state.history[-1]['epoch'], path)
        return True

    with GracefulStop(on_signal) as stop:
        if state.pending_validation:    # a stop cut it short: these weights are validated before training on
            logger.info('Running the validation of epoch %d that a stop interrupted', state.pending_validation)
            validate(state.history[-1])
            if end_of_epoch():
                return 130 if stop.signal_name == 'SIGINT' else 143
        while state.epoch < config.epochs and state.global_step < training.total_iters:
            loader.batch_sampler.set_epoch(state.epoch, start_batch=state.iteration)
            epoch_start = time.time()
            try:
                loss, stopped = train_one_epoch(training, loader, state, stop)
            except Exception:
                if not stop():      # loader workers may die on Ctrl-C; the weights are still consistent
                    raise
                loss, stopped = float('nan'), True
            if num_ranks > 1:
                average_running_statistics(model, num_ranks)
            if stopped:
                signal_name = stop.signal_name or 'a signal to another rank'
                if is_main:
                    path = save_checkpoint(run_dir, model, training.optimizer, training.scheduler, state, config)
                    logger.info('Stopped by %s at epoch %d, iteration %d. Resume with: python train.py --resume %s',
                                signal_name, state.epoch + 1, state.iteration, path)
                return 130 if stop.signal_name == 'SIGINT' else 143
            row = close_epoch(state, loss, epoch_len, time.time() - epoch_start, training.optimizer)
            if state.epoch >= config.epochs or state.global_step >= training.total_iters or (
                    not row.get('partial') and state.epoch % config.eval_every == 0):
                validate(row)
            state.history.append(row)
            if end_of_epoch():
                return 130 if stop.signal_name == 'SIGINT' else 143
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
