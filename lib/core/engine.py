"""The training loop body and the prediction pass (flip test + decoding), as HRNet's core/function.py."""
import time
from dataclasses import dataclass, field
from typing import Callable, List, Sequence, Tuple

import numpy as np
import paddle

from lib.config import TestConfig
from lib.core.metrics import heatmap_accuracy
from lib.datasets.heatmaps import flip_back, get_final_preds
from lib.utils.logger import progress


@dataclass
class TrainState:
    """Everything besides weights that a resumed run needs to continue exactly."""
    epoch: int = 0                  # current epoch (0-based)
    iteration: int = 0              # next batch index within the epoch
    global_step: int = 0
    best_mean: float = -1.0
    best_epoch: int = -1
    history: List[dict] = field(default_factory=list)   # one row per finished epoch


def _format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f'{hours}:{rest // 60:02d}:{rest % 60:02d}'
    return f'{days}d {text}' if days else text


def train_one_epoch(model, loader, criterion, optimizer, scheduler, state: TrainState, total_iters: int,
                    num_epochs: int, logger, log_every: int, should_stop: Callable[[], bool]) -> float:
    """Train from state.iteration to the end of the epoch, or until should_stop() / total_iters.

    Logs one line every `log_every` iterations; returns the mean loss of the iterations run.
    """
    model.train()
    epoch_len = len(loader.batch_sampler)
    losses, window = [], {'loss': 0.0, 'acc': 0.0, 'n': 0, 'samples': 0, 'data': 0.0, 'start': time.time()}
    end = time.time()
    for batch in progress(loader, total=epoch_len - state.iteration, desc=f'epoch {state.epoch + 1}'):
        window['data'] += time.time() - end
        outputs = model(batch['image'])
        loss = criterion(outputs, batch['target'], batch['target_weight'])
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()

        state.iteration += 1
        state.global_step += 1
        loss_value = float(loss)
        losses.append(loss_value)
        window['loss'] += loss_value
        window['n'] += 1
        window['samples'] += batch['image'].shape[0]
        if state.iteration % log_every == 0 or state.iteration == epoch_len:
            window['acc'] = heatmap_accuracy(outputs[-1].numpy(), batch['target'].numpy())
            _log_window(logger, window, state, epoch_len, num_epochs, total_iters, optimizer.get_lr())
            window.update(loss=0.0, n=0, samples=0, data=0.0, start=time.time())
        if should_stop() or state.global_step >= total_iters:
            break
        end = time.time()
    return float(np.mean(losses)) if losses else float('nan')


def _log_window(logger, window: dict, state: TrainState, epoch_len: int, num_epochs: int,
                total_iters: int, lr: float) -> None:
    elapsed = max(time.time() - window['start'], 1e-9)
    eta = elapsed / window['n'] * (total_iters - state.global_step)
    logger.info(f'Epoch [{state.epoch + 1}/{num_epochs}] Iter [{state.iteration}/{epoch_len}] '
                f'lr {lr:.3e} loss {window["loss"] / window["n"]:.6f} acc {window["acc"]:.3f} '
                f'{window["samples"] / elapsed:.1f} samples/s data {window["data"] / window["n"]:.3f}s '
                f'ETA {_format_eta(eta)}')


@paddle.no_grad()
def predict_heatmaps(model, images: paddle.Tensor, flip_pairs: Sequence[Tuple[int, int]],
                     test: TestConfig) -> np.ndarray:
    """Heatmaps [N, K, h, w] of the last stack, averaged with the flipped input's if test.flip_test."""
    heatmaps = model(images)[-1].numpy()
    if test.flip_test:
        flipped = model(paddle.flip(images, axis=[3]))[-1].numpy()
        heatmaps = 0.5 * (heatmaps + flip_back(flipped, flip_pairs, shift=test.shift_heatmap))
    return heatmaps


def predict(model, loader, num_samples: int, flip_pairs: Sequence[Tuple[int, int]], test: TestConfig,
            desc: str = 'predict') -> Tuple[np.ndarray, np.ndarray]:
    """Run the model over a loader of TopDownPoseDataset batches.

    Returns preds [num_samples, K, 2] in 0-based original-image pixels and maxvals [num_samples, K, 1],
    placed by each sample's dataset index, so the order is the annotation file's.
    """
    model.eval()
    preds, maxvals, seen = None, None, np.zeros(num_samples, dtype=bool)
    for batch in progress(loader, total=len(loader), desc=desc):
        heatmaps = predict_heatmaps(model, batch['image'], flip_pairs, test)
        batch_preds, batch_maxvals = get_final_preds(heatmaps, batch['center'].numpy(), batch['scale'].numpy(),
                                                     refine=test.post_process)
        if preds is None:
            preds = np.zeros((num_samples,) + batch_preds.shape[1:], dtype=np.float64)
            maxvals = np.zeros((num_samples,) + batch_maxvals.shape[1:], dtype=np.float32)
        index = batch['index'].numpy().reshape(-1)
        preds[index], maxvals[index], seen[index] = batch_preds, batch_maxvals, True
    if not seen.all():
        raise RuntimeError(f'the loader covered {seen.sum()} of {num_samples} samples; '
                           'the prediction pass must see every sample exactly once.')
    return preds, maxvals
