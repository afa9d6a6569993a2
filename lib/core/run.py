"""A training run's pieces that train.py calls in order: its configuration and folder (new or resumed),
model / optimizer / schedule, the checkpoint, the epoch's history row, validation with the best weights, and
RunControl, the bookkeeping between epochs (validation, checkpoint, curves, stop signals, the exit code)."""
import dataclasses
import json
import os

import paddle

from lib.cli import flag_name
from lib.config import TrainConfig, resolve_config, size_name, to_dict
from lib.core.engine import Training, TrainState, describe_best, predict
from lib.core.loss import StackedHeatmapLoss
from lib.core.optim import build_optimizer, build_scheduler
from lib.core.precision import Precision
from lib.models import build_model_from
from lib.utils.checkpoint import (atomic_save, key_mismatches, load_file, model_state_from,
                                  portable_optimizer_state, remove_stale_temporaries, require_finite, restore_optimizer_state, save_weights)
from lib.utils.distributed import any_rank, barrier
from lib.utils.errors import AlreadyExists, BadValue
from lib.utils.files import write_json
from lib.utils.logger import setup_logger
from lib.utils.signals import GracefulStop

CHECKPOINT_NAME = 'checkpoint.pdparams'
# What a resumed run may change: how long it runs, how it logs and where; not the recipe.
RESUME_OVERRIDES = ('epochs', 'max_iters', 'workers', 'eval_every', 'log_every', 'log_seconds', 'device',
                    'debug_images', 'use_vdl')


def default_run_name(config: TrainConfig) -> str:
    """<dataset>_<model>_<H>x<W>: mpii_hourglass8_256x256, coco_pose_resnet_50_256x192 (HRNet's naming)."""
    return f'{config.data.dataset}_{config.model.label}_{size_name(config.data.input_wh)}'


def load_resume_checkpoint(resume: str):
    """(checkpoint dict, its path) of --resume, a checkpoint.pdparams or its run folder."""
    path = os.path.join(resume, CHECKPOINT_NAME) if os.path.isdir(resume) else resume
    checkpoint = load_file(path)
    if not isinstance(checkpoint, dict) or 'train_state' not in checkpoint:
        raise BadValue(f'{path} is not a resumable checkpoint (no train_state); --resume takes the '
                       f'{CHECKPOINT_NAME} that train.py writes in the run folder.')
    return checkpoint, path


def resumed_config(checkpoint: dict, path: str, flags: dict, sets=(), config_file=None) -> TrainConfig:
    """The configuration of a resumed run: the checkpoint's, with the flags and --set values of
    RESUME_OVERRIDES applied; a flag or --set of any other key (the run's recipe) is refused alike."""
    if config_file:
        raise BadValue(f'--config {config_file} with --resume: a resumed run keeps the configuration saved in '
                       f'{path}; drop --config, or start a new run from it.')
    changes = [(f'{flag_name(key) or key} {value}', key) for key, value in flags.items() if value is not None]
    changes += [(f'--set {item}', item.partition('=')[0].strip()) for item in sets]
    for given, key in changes:
        if key not in RESUME_OVERRIDES:
            allowed = ', '.join(flag_name(k) or ('the --save_* pictures' if k == 'debug_images' else k)
                                for k in RESUME_OVERRIDES)
            raise BadValue(f'{given} with --resume: a resumed run keeps its recipe (saved in {path}); only '
                           f'{allowed} (as flags or --set) can change. Start a new run to change {key}.')
    return resolve_config(flags, run_config=checkpoint['config'], sets=sets, run_source=path)


def new_run_dir(config: TrainConfig, run_name=None) -> str:
    """<output_dir>/<run_name or default_run_name>, refused when it holds a run already."""
    run_dir = os.path.join(config.output_dir, run_name or default_run_name(config))
    if os.path.exists(os.path.join(run_dir, CHECKPOINT_NAME)):
        raise AlreadyExists(f'{run_dir} already holds a run ({CHECKPOINT_NAME}); continue it with '
                            f'--resume {os.path.join(run_dir, CHECKPOINT_NAME)}, or start a new one with '
                            'another --run_name or --output_dir.')
    return run_dir


def open_run_folder(config: TrainConfig, run_dir: str, is_main: bool):
    """The run folder made (temporaries of a run killed while saving removed, config.json written) by rank 0,
    and the run's logger (train.log on rank 0; quiet on the other ranks)."""
    leftovers = []
    if is_main:
        leftovers = [path for folder in (run_dir, os.path.join(run_dir, 'best_model'))
                     for path in remove_stale_temporaries(folder)]
        os.makedirs(run_dir, exist_ok=True)
        write_json(os.path.join(run_dir, 'config.json'), to_dict(config))
    logger = setup_logger(os.path.join(run_dir, 'train.log') if is_main else None, quiet=not is_main)
    if leftovers:
        logger.info('Removed %d temporary file(s) of a run killed while saving: %s', len(leftovers),
                    ', '.join(leftovers))
    return logger


def log_start(logger, config: TrainConfig, run_dir: str, device: str, num_ranks: int, threads: int) -> None:
    logger.info('Run folder %s, device %s x %d process(es), %d CPU threads, Paddle %s', run_dir, device, num_ranks,
                threads, paddle.__version__)
    logger.info('Config: %s', json.dumps(to_dict(config)))


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
                           run_dir: str, logger, precision: Precision, monitor, stop=None) -> dict:
    """Flip-test evaluation of the validation set (MPII PCKh, COCO AP); the weights with the best
    evaluator.indicator (Mean, AP) go to best_model/. state.best_mean holds that best value.

    A `stop` (lib/utils/signals.GracefulStop) seen between batches ends the validation unfinished: no metrics
    (an empty dict), no best-model decision, and state.pending_validation = epoch, so that the checkpoint
    written next tells a resumed run to validate these weights before it trains on."""
    prediction = predict(model, loader, len(loader.dataset), evaluator.layout.flip_pairs, config.test,
                         desc='validate', autocast=precision.eval_autocast,
                         on_first_batch=lambda batch, heatmaps: monitor.on_validation_batch(batch, heatmaps, epoch),
                         logger=logger, log_seconds=config.log_seconds, should_stop=stop)
    if prediction is None:
        state.pending_validation = epoch
        logger.info('The validation of epoch %d was interrupted by %s: no metrics, best_model/ unchanged; '
                    '--resume runs this validation first.', epoch, stop.signal_name)
        return {}
    state.pending_validation = 0
    preds, maxvals = prediction
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


def load_init_weights(model, path: str) -> None:
    """--init_weights: the whole model from `path` (load_file: no code run, non-finite tensors refused), every key
    and shape checked."""
    state = model_state_from(load_file(path), path)
    problems = key_mismatches(model.state_dict(), state)
    if problems:
        raise BadValue(f'--init_weights {path} does not fit the {type(model).__name__} of this run:\n{problems}'
                       'Pass weights of the same model, size and number of joints (--print_config shows the model), '
                       'or --pretrained_backbone for ImageNet ResNet weights.')
    model.set_state_dict(state)


def build_training(config: TrainConfig, checkpoint, iters_per_epoch: int, num_ranks: int, logger,
                   indicator: str = 'Mean'):
    """Model, loss, optimizer, schedule and precision, restored from the checkpoint when resuming."""
    model = build_model_from(config.model)
    if config.pretrained_backbone and checkpoint is None:
        from lib.models.pretrained import load_backbone
        loaded = load_backbone(model, config.pretrained_backbone)
        logger.info('Loaded %d backbone tensors from %s', len(loaded), config.pretrained_backbone)
    if config.init_weights and checkpoint is None:
        load_init_weights(model, config.init_weights)
        logger.info('Started from the weights of %s', config.init_weights)
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
        logger.info('Resumed at epoch %d, iteration %d (step %d, %s)',
                    state.epoch + 1, state.iteration, state.global_step, describe_best(indicator, state))
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
                        config.epochs, total_iters, config.log_every, config.max_nonfinite,
                        log_seconds=config.log_seconds)
    return model, training, state


class RunControl:
    """What train.py's loop does between epochs besides training: the validation (on rank 0, the others wait),
    the checkpoint and the curves, and the stop signals: `stop` is the GracefulStop the loop runs under; the
    first signal is logged at once (on_signal), the loop ends after the current iteration or validation batch
    with a checkpoint, and exit_code says how the run ended."""

    def __init__(self, config: TrainConfig, run_dir: str, model, training: Training, state: TrainState,
                 val_loader, evaluator, monitor, logger, is_main: bool):
        self.config, self.run_dir, self.model, self.training, self.state = config, run_dir, model, training, state
        self.val_loader, self.evaluator, self.monitor, self.logger = val_loader, evaluator, monitor, logger
        self.is_main = is_main
        self.validating = 0         # the epoch whose validation is running (0: none), for on_signal's line
        self.stop = GracefulStop(self.on_signal)

    @property
    def exit_code(self) -> int:
        """130 for Ctrl-C (SIGINT), 143 for SIGTERM or a stop that came from another rank, as a shell reports them."""
        return 130 if self.stop.signal_name == 'SIGINT' else 143

    def on_signal(self, name: str) -> None:
        if self.validating:
            self.logger.info('Received %s: stopping the validation of epoch %d after its current batch and saving '
                             'a checkpoint; Ctrl-C again stops at once.', name, self.validating)
            return
        self.logger.info('Received %s: stopping after the current iteration (epoch %d, iteration %d) and saving a '
                         'checkpoint; Ctrl-C again stops at once.', name, self.state.epoch + 1,
                         self.state.iteration + 1)

    def validation_due(self, row: dict) -> bool:
        """At the end of the run, and every eval_every complete epochs."""
        config, state = self.config, self.state
        return (state.epoch >= config.epochs or state.global_step >= self.training.total_iters
                or (not row.get('partial') and state.epoch % config.eval_every == 0))

    def validate(self, row: dict) -> None:
        """The epoch's validation into its history row; a stop ends it unfinished (validate_and_keep_best)."""
        if self.is_main:     # every rank holds the same weights; one validation is enough
            self.validating = row['epoch']
            row.update(validate_and_keep_best(self.model, self.val_loader, self.evaluator, self.config, self.state,
                                              row['epoch'], self.run_dir, self.logger, self.training.precision,
                                              self.monitor, self.stop))
            self.validating = 0
        barrier()

    def save(self) -> str:
        return save_checkpoint(self.run_dir, self.model, self.training.optimizer, self.training.scheduler,
                               self.state, self.config)

    def end_of_epoch(self) -> bool:
        """Checkpoint and curves; True when a stop came after the epoch's last iteration (during validation)."""
        if self.is_main:
            path = self.save()
            self.monitor.on_epoch_end(self.state.history, self.state)
        if not any_rank(self.stop()):
            return False
        if self.is_main:
            self.logger.info('Stopped by %s after epoch %d. Resume with: python train.py --resume %s',
                             self.stop.signal_name or 'a signal to another rank', self.state.history[-1]['epoch'], path)
        return True

    def stopped_in_epoch(self) -> int:
        """A stop inside an epoch: its checkpoint, the line that says how to resume, and the exit code."""
        if self.is_main:
            path = self.save()
            self.logger.info('Stopped by %s at epoch %d, iteration %d. Resume with: python train.py --resume %s',
                             self.stop.signal_name or 'a signal to another rank', self.state.epoch + 1,
                             self.state.iteration, path)
        return self.exit_code
