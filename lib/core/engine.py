"""The training loop body and the prediction pass (flip test + decoding), as HRNet's core/function.py."""
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle

from lib.config import DataConfig, TestConfig
from lib.core.metrics import heatmap_accuracy
from lib.core.precision import Precision
from lib.datasets.codec import codec_for
from lib.datasets.heatmaps import flip_test
from lib.utils.distributed import agree, running_statistics
from lib.utils.errors import NonFinite
from lib.utils.logger import format_eta, progress


@dataclass
class TrainState:
    """Everything besides weights that a resumed run needs to continue exactly."""
    epoch: int = 0                  # current epoch (0-based)
    iteration: int = 0              # next batch index within the epoch
    global_step: int = 0
    best_mean: float = -1.0
    best_epoch: int = -1
    nonfinite_steps: int = 0        # steps skipped for a non-finite loss or gradient, in all
    nonfinite_streak: int = 0       # ... in a row, up to now
    applied_steps: int = 0          # steps whose update was applied, in all
    epoch_loss_sum: float = 0.0     # finite losses of the current epoch so far (kept across a resume) ...
    epoch_loss_count: int = 0       # ... and their number
    loss_scale: float = 0.0         # fp16's dynamic loss scale (0 = not used yet), so a resume goes on with it ...
    loss_scale_good_steps: int = 0  # ... and with its count of steps since the last overflow
    history: List[dict] = field(default_factory=list)   # one row per finished epoch
    pending_validation: int = 0     # epoch (1-based) whose validation a stop cut short; a resume runs it first


@dataclass
class Training:
    """The pieces of a training step, built once in train.py."""
    model: paddle.nn.Layer          # what runs the batch (paddle.DataParallel when several processes)
    criterion: paddle.nn.Layer
    optimizer: object
    scheduler: object
    precision: Precision
    logger: object
    num_epochs: int
    total_iters: int
    log_every: int
    max_nonfinite: int              # a run that skips this many steps in a row stops with an error
    on_log: Optional[Callable] = None   # called at each log line: (batch, outputs, state, scalars)
    running_stats: Optional[List[paddle.Tensor]] = None   # BatchNorm statistics; found at the first step
    log_seconds: float = 60.0       # ... and a line at least this often (wall time), whichever comes first


class StatisticsSnapshot:
    """BatchNorm running statistics as they were before a step's forward pass, so that a skipped step can put
    them back: the forward pass updates them before anyone knows that the loss is not finite. One concat per
    dtype per step (no host synchronisation); restoring, which only a skipped step does, is bit-exact."""

    def __init__(self, tensors: Sequence[paddle.Tensor]):
        self.groups = {}
        for tensor in tensors:
            self.groups.setdefault(tensor.dtype, []).append(tensor)
        with paddle.no_grad():
            self.saved = {dtype: paddle.concat([_flat(t) for t in group]) for dtype, group in self.groups.items()}

    def restore(self) -> None:
        with paddle.no_grad():
            for dtype, group in self.groups.items():
                parts = paddle.split(self.saved[dtype], [int(np.prod(t.shape)) for t in group])
                for tensor, part in zip(group, parts):
                    paddle.assign(part.reshape(tensor.shape), output=tensor)


def _flat(tensor: paddle.Tensor) -> paddle.Tensor:
    return tensor if len(tensor.shape) == 1 else tensor.reshape([-1])     # BatchNorm's are [C]: no operator


def describe_best(indicator: str, state: TrainState) -> str:
    """'best Mean 0.871 at epoch 12', or 'best: none yet' before the first validation."""
    if state.best_epoch < 0:
        return 'best: none yet'
    return f'best {indicator} {state.best_mean:.3f} at epoch {state.best_epoch}'


def train_step(t: Training, batch: dict, state: TrainState,
               stop_requested: Union[bool, Callable[[], bool]]) -> Tuple[float, bool, list]:
    """Forward, loss, backward and update of one batch. Returns (loss, stop, outputs): `stop` when any
    rank was asked to stop. A callable `stop_requested` is read after the backward pass, so that a signal
    received during this step's computation stops the run after this step, not after the next one. A step
    whose loss or gradients are not finite on any rank is skipped on all, and leaves the model as it was:
    weights, optimizer state and BatchNorm statistics.

    One host synchronisation: the loss, the finiteness verdict and the stop vote travel in one small tensor
    (one all-reduce when there are several ranks) and are read once.
    """
    if t.running_stats is None:
        t.running_stats = running_statistics(t.model)
    before = StatisticsSnapshot(t.running_stats)
    with t.precision.autocast():
        outputs = t.model(batch['image'])
        loss = t.criterion(outputs, batch['target'], batch['target_weight'])
    t.precision.backward(loss)
    loss = loss.astype('float32').reshape([1])
    bad = paddle.logical_or(t.precision.unscale_and_check(t.model.parameters()),
                            paddle.logical_not(paddle.isfinite(loss)))
    if callable(stop_requested):
        stop_requested = stop_requested()
    summary = paddle.concat([paddle.where(bad, paddle.zeros_like(loss), loss), bad.astype('float32'),
                             paddle.to_tensor([float(stop_requested), 1.0], dtype='float32')])
    # Summed over ranks, so the log shows the mean loss of all ranks.
    loss_sum, bad_votes, stop_votes, ranks = agree(summary)
    apply = bad_votes == 0
    t.precision.finish_step(t.optimizer, apply)
    if t.precision.scaler is not None:
        state.loss_scale, state.loss_scale_good_steps = t.precision.scaler.scale, t.precision.scaler.good_steps
    t.optimizer.clear_grad()
    t.scheduler.step()
    state.iteration += 1
    state.global_step += 1
    if apply:
        state.nonfinite_streak = 0
        state.applied_steps += 1
        loss_value = loss_sum / ranks
    else:
        before.restore()
        loss_value = float('nan')
        _skipped(t, state, loss.item())
    return loss_value, stop_votes > 0, outputs


def _skipped(t: Training, state: TrainState, loss_value: float) -> None:
    state.nonfinite_steps += 1
    state.nonfinite_streak += 1
    t.logger.warning('Epoch %d iteration %d (step %d): non-finite loss or gradient (loss %s); step skipped '
                     '(%d in a row, %d in all)', state.epoch + 1, state.iteration, state.global_step, loss_value,
                     state.nonfinite_streak, state.nonfinite_steps)
    if state.nonfinite_streak >= t.max_nonfinite:
        raise NonFinite(
            f'{state.nonfinite_streak} training steps in a row had a non-finite loss or gradient (last at step '
            f'{state.global_step}); stopping without saving these weights. The last checkpoint is intact. '
            'Lower --lr, check the data, or train without --amp / with --amp bf16.')


def _log_window(logger, window: dict, state: TrainState, epoch_len: int, num_epochs: int,
                total_iters: int, lr: float) -> None:
    elapsed = max(time.time() - window['start'], 1e-9)
    eta = elapsed / window['n'] * (total_iters - state.global_step)
    logger.info(f'Epoch [{state.epoch + 1}/{num_epochs}] Iter [{state.iteration}/{epoch_len}] '
                f'lr {lr:.3e} loss {window["loss"] / window["n"]:.6f} acc {window["acc"]:.3f} '
                f'{window["samples"] / elapsed:.1f} samples/s data {window["data"] / window["n"]:.3f}s '
                f'ETA {format_eta(eta)}')


def train_one_epoch(t: Training, loader, state: TrainState, should_stop: Callable[[], bool]) -> Tuple[float, bool]:
    """Train from state.iteration to the end of the epoch, or until a stop or t.total_iters.

    Logs a line at the epoch's first iteration, then every `t.log_every` iterations or `t.log_seconds` seconds,
    whichever comes first, and at its last one (the epoch's end, a stop, or t.total_iters). Returns (mean loss
    of the epoch's iterations so far, a resumed part included, stopped).
    """
    t.model.train()
    epoch_len = len(loader.batch_sampler)
    if state.iteration == 0:
        state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0
    window = {'loss': 0.0, 'acc': 0.0, 'n': 0, 'samples': 0, 'data': 0.0, 'start': time.time()}
    end, stopped, first = time.time(), False, True
    # Several ranks decide to stop together through train_step's vote; one process can also look after the step.
    alone = paddle.distributed.get_world_size() == 1
    for batch in progress(loader, total=epoch_len - state.iteration, desc=f'epoch {state.epoch + 1}'):
        window['data'] += time.time() - end
        loss_value, stopped, outputs = train_step(t, batch, state, should_stop)
        stopped = stopped or (alone and should_stop())
        if math.isfinite(loss_value):
            state.epoch_loss_sum += loss_value
            state.epoch_loss_count += 1
            window['loss'] += loss_value
            window['n'] += 1
        window['samples'] += batch['image'].shape[0]
        last = stopped or state.global_step >= t.total_iters or state.iteration == epoch_len
        due = (first or last or state.iteration % t.log_every == 0
               or time.time() - window['start'] >= t.log_seconds)
        if due and window['n']:
            window['acc'] = heatmap_accuracy(outputs[-1].astype('float32').numpy(), batch['target'].numpy())
            _log_window(t.logger, window, state, epoch_len, t.num_epochs, t.total_iters, t.optimizer.get_lr())
            if t.on_log is not None:
                t.on_log(batch, outputs, state, {'loss': window['loss'] / window['n'], 'acc': window['acc'],
                                                 'lr': t.optimizer.get_lr()})
            window.update(loss=0.0, n=0, samples=0, data=0.0, start=time.time())
        first = False
        # At the epoch's end the loop runs out by itself: that is what shuts the loader's worker processes
        # down (a break there left one set alive per epoch).
        if stopped or (state.global_step >= t.total_iters and state.iteration < epoch_len):
            break
        end = time.time()
    mean_loss = state.epoch_loss_sum / state.epoch_loss_count if state.epoch_loss_count else float('nan')
    return mean_loss, stopped


@paddle.no_grad()
def predict_heatmaps(model, images: paddle.Tensor, flip_pairs: Sequence[Tuple[int, int]],
                     test: TestConfig, autocast=contextlib.nullcontext, shift: Optional[bool] = None) -> np.ndarray:
    """Heatmaps [N, K, h, w] of the last stack, averaged with the flipped input's if test.flip_test; `shift`
    (default test.shift_heatmap) is the codec's flip_shift (never under UDP)."""
    def run(batch: paddle.Tensor) -> np.ndarray:
        with autocast():
            return model(batch)[-1].astype('float32').numpy()
    return flip_test(run, images, flip_pairs, test.flip_test, test.shift_heatmap if shift is None else shift,
                     mirror=lambda batch: paddle.flip(batch, axis=[3]))


def predict(model, loader, num_samples: int, flip_pairs: Sequence[Tuple[int, int]], test: TestConfig,
            desc: str = 'predict', autocast=contextlib.nullcontext,
            on_first_batch: Optional[Callable] = None, logger=None,
            log_seconds: float = 60.0,
            should_stop: Optional[Callable[[], bool]] = None,
            data: Optional[DataConfig] = None) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Run the model over a loader of TopDownPoseDataset batches; progress lines go to `logger` when stdout is
    not a terminal (lib/utils/logger.progress).

    Returns preds [num_samples, K, 2] in 0-based original-image pixels and maxvals [num_samples, K, 1],
    placed by each sample's dataset index, so the order is the annotation file's. Returns None when
    `should_stop()`, read after each batch but the last, is true: the pass ends there, unfinished. Flip test and
    decoding follow the codec of (data, test) (lib/datasets/codec.py); data defaults to the DataConfig of the
    loader's dataset, the one that made the crops, so that crops and decoding agree (UDP, DARK's kernel).
    """
    codec = codec_for(data if data is not None else getattr(loader.dataset, 'config', None), test)
    model.eval()
    preds, maxvals, seen = None, None, np.zeros(num_samples, dtype=bool)
    for batch in progress(loader, total=len(loader), desc=desc, logger=logger, log_seconds=log_seconds,
                          count=lambda batch: batch['image'].shape[0]):
        heatmaps = predict_heatmaps(model, batch['image'], flip_pairs, test, autocast, shift=codec.flip_shift)
        if on_first_batch is not None and not seen.any():
            on_first_batch(batch, heatmaps)
        batch_preds, batch_maxvals = codec.decode(heatmaps, batch['center'].numpy(), batch['scale'].numpy())
        if preds is None:
            preds = np.zeros((num_samples,) + batch_preds.shape[1:], dtype=np.float64)
            maxvals = np.zeros((num_samples,) + batch_maxvals.shape[1:], dtype=np.float32)
        index = batch['index'].numpy().reshape(-1)
        preds[index], maxvals[index], seen[index] = batch_preds, batch_maxvals, True
        if should_stop is not None and should_stop() and not seen.all():
            return None
    if not seen.all():
        raise RuntimeError(f'the loader covered {seen.sum()} of {num_samples} samples; '
                           'the prediction pass must see every sample exactly once.')
    return preds, maxvals
