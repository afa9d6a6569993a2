"""Train a Stacked Hourglass network (Newell et al., ECCV 2016) or SimpleBaselines on MPII or COCO with Paddle.

    python train.py --image_size 256 --dataset_root data/mpii
    nohup python -u train.py --image_size 256 --dataset_root data/mpii > hg256.log &
    python train.py --dataset coco --model pose_resnet_50 --image_size 256x192 --dataset_root data/coco \
        --pretrained_backbone resnet50.pdparams
    python train.py --resume output/mpii_hourglass8_256x256/checkpoint.pdparams   # continue a run

Every epoch ends with a resumable checkpoint; the model with the best validation score (MPII: Mean, i.e.
PCKh@0.5; COCO: AP with ground-truth boxes; flip test) is kept as <run dir>/best_model/model.pdparams.
SIGTERM or Ctrl-C saves a checkpoint first. See README.md for all flags.
"""
import argparse
import dataclasses
import json
import os
import random
import signal
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
warnings.filterwarnings('ignore', message='When training, we now always track')
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from lib.config import (DATASET_PRESETS, DEFAULT_ROOTS, PRESETS, TrainConfig, from_dict, image_size_arg,
                        preset_config, size_name, to_dict)
from lib.core.engine import Training, TrainState, predict, train_one_epoch
from lib.core.evaluators import build_evaluator
from lib.core.loss import StackedHeatmapLoss
from lib.core.optim import build_optimizer, build_scheduler
from lib.core.precision import Precision
from lib.datasets.loaders import build_dataset, eval_loader, train_loader
from lib.models import build_model_from, check_input_size, model_options
from lib.utils.checkpoint import (atomic_save, load_file, portable_optimizer_state, require_finite,
                                  restore_optimizer_state, save_weights)
from lib.utils.device import select_device
from lib.utils.distributed import average_running_statistics, barrier, init_distributed, max_difference_across_ranks
from lib.utils.logger import setup_logger
from lib.utils.monitor import RunMonitor

CHECKPOINT_NAME = 'checkpoint.pdparams'
RESUME_OVERRIDES = ('epochs', 'max_iters', 'workers', 'eval_every', 'log_every', 'device')



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Unset flags are None, so that a resumed run can tell what the user asked to change.
    p.add_argument('--dataset', choices=sorted(DATASET_PRESETS), help='mpii (default) or coco (person keypoints)')
    p.add_argument('--model', choices=sorted(PRESETS), help='architecture; its reference recipe on the dataset '
                   '(README, "Presets") gives the defaults of the flags below (default hourglass)')
    p.add_argument('--dataset_root', help='MPII in the HRNet layout (default data/mpii), or COCO with annotations/ '
                   'and images/{train2017,val2017}/ or {train2017,val2017}/ (default data/coco)')
    p.add_argument('--image_size', type=image_size_arg, help='input size: a side (256 = 256x256) or HEIGHTxWIDTH '
                   'as HRNet names it (256x192 = 192 wide); default 256, COCO 256x192 (hourglass52/104: 256); '
                   'multiples of 64 for hourglass, 128 for hourglass52/104, 32 for pose_resnet')
    p.add_argument('--sigma', type=float, help='Gaussian target sigma in heatmap pixels (default 2, HRNet; COCO '
                   'inputs 384 high: 3)')
    p.add_argument('--scale_factor', type=float, help='scale augmentation: x clip(N(0,1)*sf+1, 1-sf, 1+sf) '
                   '(default 0.25; COCO 0.3; hourglass52/104 0.5)')
    p.add_argument('--rotation_factor', type=float, help='rotation augmentation: clip(N(0,1)*rf, -2rf, 2rf) degrees '
                   'w.p. 0.6 (default 30; COCO and hourglass52/104 40)')
    p.add_argument('--no_flip', action='store_true', help='no horizontal flip augmentation')
    p.add_argument('--prob_half_body', type=float, help='half-body crop probability (HRNet PROB_HALF_BODY; default '
                   '0 = never; COCO hourglass52/104 0.3)')
    p.add_argument('--num_joints_half_body', type=int, help='half body only when more joints than this are '
                   'annotated (default 8)')
    p.add_argument('--use_joints_weight', action=argparse.BooleanOptionalAction, default=None,
                   help="scale the loss of elbows/knees by 1.2 and wrists/ankles by 1.5 (HRNet "
                   "USE_DIFFERENT_JOINTS_WEIGHT; COCO's table; default off)")
    p.add_argument('--reduced_decode', action='store_true', help='decode large training images at 1/2, 1/4 or 1/8 '
                   'resolution when the crop is small enough (faster data loading; targets unchanged)')
    p.add_argument('--train_set', help='annotation file used for training (default train; trainval for the test '
                   'server; COCO train2017)')
    p.add_argument('--valid_set', help='annotation file used for validation (default valid; COCO val2017)')
    p.add_argument('--num_stacks', type=int, help='hourglass stacks: 1, 2, 4 or 8 (default 8)')
    p.add_argument('--num_features', type=int, help='hourglass width (default 256)')
    p.add_argument('--output_dir', help='parent folder of runs (default output)')
    p.add_argument('--run_name', help='run folder name (default <dataset>_<model>_<H>x<W>, e.g. '
                   'mpii_hourglass8_256x256, coco_pose_resnet_50_256x192)')
    p.add_argument('--batch_size', type=int, help='images per iteration (default 16)')
    p.add_argument('--epochs', type=int, help='epochs (default 140)')
    p.add_argument('--optimizer', choices=('rmsprop', 'adam'), help='default rmsprop, as the paper')
    p.add_argument('--lr', type=float, help='initial learning rate (default 2.5e-4)')
    p.add_argument('--lr_steps', type=int, nargs='+', help='epochs at which the lr is multiplied by --lr_gamma (default 90 120)')
    p.add_argument('--lr_gamma', type=float, help='lr decay factor (default 0.1)')
    p.add_argument('--warmup_iters', type=int, help='linear lr warm-up over N iterations (default 0; hourglass52: 500)')
    p.add_argument('--warmup_ratio', type=float, help='warm-up starts at lr x this (default 0.001)')
    p.add_argument('--weight_decay', type=float, help='L2 weight decay (default 0)')
    p.add_argument('--stack_loss', choices=('sum', 'mean'), help='combine the per-stack losses (default sum, HRNet)')
    p.add_argument('--workers', type=int, help='data loading processes (default 4)')
    p.add_argument('--seed', type=int, help='seed of initialisation, shuffling and augmentation (default 0)')
    p.add_argument('--device', choices=('auto', 'cpu', 'gpu'), help='default auto: GPU when present')
    p.add_argument('--max_iters', type=int, help='stop after this many iterations in all (smoke runs; 0 = no limit)')
    p.add_argument('--eval_every', type=int, help='validate every N epochs (default 1)')
    p.add_argument('--log_every', type=int, help='log a line every N iterations (default 50)')
    p.add_argument('--val_batch_size', type=int, help='validation batch size (default 32)')
    p.add_argument('--no_flip_test', action='store_true', help='validate without the flip test')
    p.add_argument('--pretrained_backbone', help='ImageNet ResNet weights for pose_resnet: Paddle\'s own .pdparams '
                   'or a torchvision checkpoint converted by tools/convert_weights.py')
    p.add_argument('--amp', choices=('off', 'fp16', 'bf16'), help='mixed precision (default off); fp16 uses a GradScaler')
    p.add_argument('--amp_level', choices=('O1', 'O2'), help='O1: per-op casting (default); O2: low-precision '
                   'weights with float32 master copies')
    p.add_argument('--max_nonfinite', type=int, help='stop with an error after this many skipped (non-finite) '
                   'steps in a row (default 20)')
    p.add_argument('--use_vdl', action='store_true', help='also log scalars for VisualDL (pip install visualdl)')
    for part, text in (('batch_images_gt', 'training/validation crops with the target joints'),
                       ('batch_images_pred', 'crops with the predicted joints'),
                       ('heatmaps_gt', 'target heatmaps over the crops'),
                       ('heatmaps_pred', 'predicted heatmaps over the crops')):
        p.add_argument(f'--save_{part}', action='store_true', help=f'write {text} to <run>/debug at each log line')
    p.add_argument('--resume', help='checkpoint.pdparams (or its run folder) to continue')
    return p.parse_args(argv)


def _given(args, name, default):
    value = getattr(args, name)
    return default if value is None else value


def build_config(args: argparse.Namespace) -> TrainConfig:
    dataset = args.dataset or 'mpii'
    # The preset of (dataset, model) at the requested input size (the references' sigma depends on it).
    defaults = preset_config(args.model or 'hourglass', dataset_root=DEFAULT_ROOTS[dataset], dataset=dataset,
                             input_wh=args.image_size)
    check_input_size(defaults.model.name, defaults.data.input_wh)
    data = dataclasses.replace(
        defaults.data, dataset_root=_given(args, 'dataset_root', defaults.data.dataset_root),
        sigma=_given(args, 'sigma', defaults.data.sigma),
        scale_factor=_given(args, 'scale_factor', defaults.data.scale_factor),
        rotation_factor=_given(args, 'rotation_factor', defaults.data.rotation_factor),
        flip=not args.no_flip, reduced_decode=args.reduced_decode,
        prob_half_body=_given(args, 'prob_half_body', defaults.data.prob_half_body),
        num_joints_half_body=_given(args, 'num_joints_half_body', defaults.data.num_joints_half_body),
        use_joints_weight=_given(args, 'use_joints_weight', defaults.data.use_joints_weight),
        train_set=_given(args, 'train_set', defaults.data.train_set),
        valid_set=_given(args, 'valid_set', defaults.data.valid_set))
    model = dataclasses.replace(defaults.model, num_stacks=_given(args, 'num_stacks', defaults.model.num_stacks),
                                num_features=_given(args, 'num_features', defaults.model.num_features))
    test = dataclasses.replace(defaults.test, flip_test=not args.no_flip_test,
                               batch_size=_given(args, 'val_batch_size', defaults.test.batch_size))
    simple = {f.name: _given(args, f.name, getattr(defaults, f.name))
              for f in dataclasses.fields(TrainConfig) if f.name not in ('data', 'model', 'test', 'debug_images', 'use_vdl')}
    simple['lr_steps'] = tuple(simple['lr_steps'])
    simple['debug_images'] = tuple(name for flag, name in (('save_batch_images_gt', 'gt'), ('save_batch_images_pred', 'pred'),
                                                           ('save_heatmaps_gt', 'hm_gt'), ('save_heatmaps_pred', 'hm_pred'))
                                   if getattr(args, flag))
    simple['use_vdl'] = args.use_vdl
    model_options(model)                    # wrong options fail here, before any data is read
    return TrainConfig(data=data, model=model, test=test, **simple)


def default_run_name(config: TrainConfig) -> str:
    """<dataset>_<model>_<H>x<W>: mpii_hourglass8_256x256, coco_pose_resnet_50_256x192 (HRNet's naming)."""
    return f'{config.data.dataset}_{config.model.label}_{size_name(config.data.input_wh)}'


def resolve_run(args) -> tuple:
    """(config, run_dir, checkpoint or None): a fresh run, or the saved state of the one to resume."""
    if args.resume:
        path = os.path.join(args.resume, CHECKPOINT_NAME) if os.path.isdir(args.resume) else args.resume
        checkpoint = load_file(path)
        if not isinstance(checkpoint, dict) or 'train_state' not in checkpoint:
            raise ValueError(f'{path} is not a resumable checkpoint (no train_state); --resume takes the '
                             f'{CHECKPOINT_NAME} that train.py writes in the run folder.')
        config = from_dict(checkpoint['config'])
        overrides = {name: getattr(args, name) for name in RESUME_OVERRIDES if getattr(args, name) is not None}
        return dataclasses.replace(config, **overrides), os.path.dirname(os.path.abspath(path)), checkpoint
    config = build_config(args)
    run_dir = os.path.join(config.output_dir, args.run_name or default_run_name(config))
    if os.path.exists(os.path.join(run_dir, CHECKPOINT_NAME)):
        raise FileExistsError(f'{run_dir} already holds a run ({CHECKPOINT_NAME}); continue it with '
                              f'--resume {os.path.join(run_dir, CHECKPOINT_NAME)}, or start a new one with '
                              'another --run_name or --output_dir.')
    return config, run_dir, None


class GracefulStop:
    """SIGTERM / Ctrl-C ask the loop to stop after the current iteration; a second Ctrl-C stops at once.

    Repeated SIGTERMs are not escalated: paddle.distributed.launch sends several within a second when
    it is itself terminated. A context manager, so the previous handlers come back when training returns.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *_):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal_name and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.signal_name is not None


def save_checkpoint(run_dir, model, optimizer, scheduler, state: TrainState, config: TrainConfig) -> str:
    path = os.path.join(run_dir, CHECKPOINT_NAME)
    weights = model.state_dict()
    require_finite(weights, path)
    atomic_save({'model': weights, 'optimizer': portable_optimizer_state(optimizer, model),
                 'lr_scheduler': scheduler.state_dict(), 'train_state': dataclasses.asdict(state),
                 'config': to_dict(config)}, path)
    return path


def close_epoch(state: TrainState, loss: float, epoch_len: int, seconds: float, optimizer) -> dict:
    """History row of the epoch just run; when it is complete, move the state to the next epoch."""
    row = {'epoch': state.epoch + 1, 'loss': loss, 'lr': optimizer.get_lr(), 'seconds': seconds}
    if state.iteration < epoch_len:         # stopped by --max_iters inside the epoch
        row['partial'] = True
        return row
    state.epoch, state.iteration = state.epoch + 1, 0
    return row


def validate_and_keep_best(model, loader, evaluator, config: TrainConfig, state: TrainState, epoch: int,
                           run_dir: str, logger, precision: Precision, monitor: RunMonitor) -> dict:
    """Flip-test evaluation of the validation set (MPII PCKh, COCO AP); the weights with the best
    evaluator.indicator (Mean, AP) go to best_model/. state.best_mean holds that best value."""
    preds, maxvals = predict(model, loader, len(loader.dataset), evaluator.layout.flip_pairs, config.test,
                             desc='validate', autocast=precision.eval_autocast,
                             on_first_batch=lambda batch, heatmaps: monitor.on_validation_batch(batch, heatmaps, epoch))
    metrics = evaluator.evaluate(preds, maxvals, os.path.join(run_dir, 'last_eval'), {'config': to_dict(config)})
    logger.info('Validation (%s, flip test %s):\n%s', evaluator.metric_name, 'on' if config.test.flip_test else 'off',
                evaluator.table(metrics, config.model.label))
    value = metrics[evaluator.indicator]
    if state.applied_steps == 0:
        logger.warning('No training step has been applied yet (all were skipped): best_model/ is not written.')
    elif value > state.best_mean:
        state.best_mean, state.best_epoch = value, epoch
        save_weights(model, os.path.join(run_dir, 'best_model', 'model.pdparams'))
        logger.info('New best %s %.3f at epoch %d: saved best_model/model.pdparams', evaluator.indicator,
                    state.best_mean, epoch)
    return dict(metrics)


def build_training(config: TrainConfig, checkpoint, iters_per_epoch: int, num_ranks: int, logger,
                   indicator: str = 'Mean'):
    """Model, loss, optimizer, schedule and precision, restored from the checkpoint when resuming."""
    model = build_model_from(config.model)
    if config.pretrained_backbone and checkpoint is None:
        from lib.models.pretrained import load_backbone
        loaded = load_backbone(model, config.pretrained_backbone)
        logger.info('Loaded %d backbone tensors from %s', len(loaded), config.pretrained_backbone)
    scheduler = build_scheduler(config.lr, config.lr_steps, config.lr_gamma, iters_per_epoch,
                                config.warmup_iters, config.warmup_ratio)
    optimizer = build_optimizer(config.optimizer, scheduler, model.parameters(), config.weight_decay)
    state = TrainState()
    if checkpoint is not None:
        model.set_state_dict(checkpoint['model'])
        restore_optimizer_state(optimizer, model, checkpoint['optimizer'])
        scheduler.set_state_dict(checkpoint['lr_scheduler'])
        saved = checkpoint['train_state']
        # Checkpoints written before applied_steps existed: every step that was not skipped was applied.
        state = TrainState(**{'applied_steps': saved['global_step'] - saved.get('nonfinite_steps', 0), **saved})
        logger.info('Resumed at epoch %d, iteration %d (step %d, best %s %.3f)',
                    state.epoch + 1, state.iteration, state.global_step, indicator, state.best_mean)
    precision = Precision(config.amp, config.amp_level)
    if precision.scaler is not None and state.loss_scale > 0:
        precision.scaler.scale, precision.scaler.good_steps = state.loss_scale, state.loss_scale_good_steps
    model, optimizer = precision.prepare(model, optimizer)
    # Same seed on every rank gives the same initial weights; DataParallel also broadcasts rank 0's.
    runner = paddle.DataParallel(model) if num_ranks > 1 else model
    total_iters = config.epochs * iters_per_epoch
    if config.max_iters:
        total_iters = min(total_iters, config.max_iters)
    training = Training(runner, StackedHeatmapLoss(config.stack_loss), optimizer, scheduler, precision, logger,
                        config.epochs, total_iters, config.log_every, config.max_nonfinite)
    return model, training, state


def main(argv=None) -> int:
    args = parse_args(argv)
    rank, num_ranks = init_distributed()
    config, run_dir, checkpoint = resolve_run(args)
    is_main = rank == 0                      # only rank 0 logs to the file and writes checkpoints
    if is_main:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, 'config.json'), 'w') as f:
            json.dump(to_dict(config), f, indent=2)
    logger = setup_logger(os.path.join(run_dir, 'train.log') if is_main else None, quiet=not is_main)
    device = select_device(config.device)
    logger.info('Run folder %s, device %s x %d process(es), Paddle %s', run_dir, device, num_ranks, paddle.__version__)
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

    with GracefulStop() as stop:
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
                if is_main:     # every rank holds the same weights; one validation is enough
                    row.update(validate_and_keep_best(model, val_loader, evaluator, config, state, row['epoch'],
                                                      run_dir, logger, training.precision, monitor))
                barrier()
            state.history.append(row)
            if is_main:
                save_checkpoint(run_dir, model, training.optimizer, training.scheduler, state, config)
                monitor.on_epoch_end(state.history, state)
    if state.applied_steps == 0:
        logger.error('No training step was applied in %d iterations: every loss or gradient was non-finite. No '
                     'model was kept. Lower --lr, check the data, or train without --amp.', state.global_step)
        return 1
    if num_ranks > 1:
        difference = max_difference_across_ranks(list(model.state_dict().values()))
        logger.info('Weights and statistics on the %d ranks differ by at most %g', num_ranks, difference)
    logger.info('Done: %d iterations, best %s %.3f at epoch %d. Weights: %s', state.global_step, evaluator.indicator,
                state.best_mean, state.best_epoch, os.path.join(run_dir, 'best_model', 'model.pdparams'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
