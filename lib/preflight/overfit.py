"""Does it learn on my data: train the configured model on K people of the user's own training set for a few
hundred iterations, then check that it learned them (tools/preflight.py --overfit K).

A network that cannot fit 16 people will not fit 22 000: this catches the silent failures users report after days
of training, in minutes on a GPU (a minute or two on a CPU at a small size). The K people are trained with the
configured model, optimizer, lr (without its decay steps: their epochs mean nothing for K people), warm-up, stack
loss, precision and augmentation, at batch min(batch_size, K); then the same K people are evaluated in eval mode
without augmentation (flip test as configured). Checks, each a Finding whose fix names what to look at:

    joint order         the whole set's annotations put the joints where the layout says (joint_order.py)

    target weights      the K people's target_weight sums to more than 0 (else every joint is marked invisible)
    loss falls          the mean loss of the last tenth of the iterations < LOSS_FRACTION x the loss of predicting
                        empty heatmaps (the level a network that learned nothing settles at)
    predictions spread  at most STUCK_SHARE of the annotated joints share one heatmap location (all at the crop
                        origin (0, 0): heatmaps <= 0; all at one spot such as the centre: the input is ignored)
    eval = train mode   the heatmaps in eval mode differ from those in train mode on the same batch by less than
                        BATCHNORM_BAR (relative L2): the BatchNorm running statistics match the batches
    score               the K people's training score >= its bar: PCKh@0.5 (PCKH_BAR) when the set has a
                        gt_<set>.mat (MPII's head boxes live there only), else HRNet's training accuracy
                        (ACCURACY_BAR; lib/core/metrics.heatmap_accuracy, the figure train.py logs, at threshold
                        ACCURACY_THRESHOLD: the share of annotated joints whose heatmap argmax lies within a tenth of
                        the heatmap side of the target's, a PCK normalised by the person box, for COCO and MPII)

and, for reading, the score of the mirrored crops (flipped back, left/right channels swapped) against that of the
crops (a network that fits gives about 1 x; an order that disagrees with the flip pairs, less).

Measured on the real photos of valid_photos (269 people; it has a gt_valid_photos.mat), CPU, 2 cores shared with
other jobs (load 2-5), 2026-12-02, Paddle 3.3.1; the bars sit below the lowest figure of a real group, with margin:

    python tools/preflight.py --overfit 16 --overfit_only --dataset_root /work/shared/data/mpii \
        --train_set valid_photos --image_size 64 --num_stacks 1 --num_features 64 --device cpu --workers 0 \
        --overfit_first F                        (300 iterations, rmsprop lr 2.5e-4; 3.7-6.2 min per group)
    ... --num_features 32 --lr 2e-3 --overfit_iters 200    (the tests' configuration; 1.5-3.8 min per group)

    people                   PCKh@0.5                         accuracy@1.0  loss / empty  eval vs train
    F = 0, 16, 32, 48        38.6 37.7 39.0 33.6 (F = 0, 1   75.1 (F = 0)  0.29-0.32     0.10-0.17
                             thread: 32.9)
    F = 0, 16 (fast)         44.0 37.2                        84.0 82.9     0.25-0.26     0.16-0.18
    mixed joint order, F = 0 14.0                             49.8          0.44          0.13
    ... (fast)               -                                59.9          0.41          0.17
    8 people, F = 0 (fast)   40.4                             87.5          -             0.14
    ... mixed joint order    -                                62.1          -             0.15
    all joints_vis 0            fails before training: 0 of 256 joint weights on

The mixed order is valid_photos with the right arm and the right leg exchanged (ankle <-> wrist, knee <-> elbow,
hip <-> shoulder; its PCKh against a gt_<set>.mat permuted alike). Under-trained runs (8 people, 150 iterations,
32 features, lr 2.5e-4) scored PCKh 7.7 and differed by 0.29-0.38 between the modes; a fresh network, whose BatchNorm
statistics never saw a batch, by 1.41 (tests/test_overfit.py). The mirrored crops scored 0.80-1.11 x the crops for
the real and the mixed order alike: at these few CPU iterations the network fits neither well enough for that row
to tell them apart, so it is reported, not a bar.

A left/right swap of the whole annotation (or of arms with legs) is a consistent relabelling that no training
check can see: the flip pairs map it onto itself; and the mixed order above trains to a score only a little below the
real one. The joint order is therefore checked first, from the whole set's annotations (lib/preflight/joint_order.py:
heads above necks, shoulders above hips, most people facing the camera); a wrong order, like all joints invisible,
ends the check before training.
"""
import dataclasses
import logging
import os
from typing import Callable, List

import numpy as np
import paddle

from lib.config import TrainConfig
from lib.core.engine import StatisticsSnapshot, TrainState, predict_heatmaps, train_step
from lib.core.metrics import heatmap_accuracy
from lib.core.run import build_training
from lib.datasets.codec import codec_for
from lib.datasets.heatmaps import flip_back, get_max_preds
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.records import load_split
from lib.datasets.loaders import eval_loader, train_loader
from lib.preflight.findings import FAIL, INFO, NOT_RUN, PASS, Finding
from lib.preflight.joint_order import check_joint_order
from lib.utils.distributed import running_statistics
from lib.utils.errors import BadValue

DEFAULT_PEOPLE = 16
DEFAULT_ITERATIONS = 300
LOSS_FRACTION = 0.5        # final loss / loss of empty heatmaps
STUCK_SHARE = 0.5          # share of annotated joints at one heatmap location
BATCHNORM_BAR = 0.5        # ||eval - train|| / ||train|| of one batch's heatmaps: measured 0.13-0.38, 1.41 unupdated
PCKH_BAR = 25.0            # the K people's training PCKh@0.5 (sets with a gt_<set>.mat): measured 32.9-44.0
# HRNet's accuracy counts a joint within 0.5 x h/10 of the target: under one pixel of a 16 x 16 heatmap (a 64 px
# input), where the real photos scored 15.6-27.1 and a mixed joint order 9.1-14.1; within h/10 they score 75.1-84.0
# and 49.8-59.9 (module docstring).
ACCURACY_THRESHOLD = 1.0
ACCURACY_BAR = 67.0        # ... or their training heatmap accuracy, percent (sets without a gt_<set>.mat)
QUIET = logging.getLogger('preflight.overfit')

JOINT_ORDER_FIX = ('check the joint order of your annotation against the dataset\'s joints and flip pairs '
                   '(lib/datasets/skeletons.py: MPII\'s 16 joints r-ankle ... l-wrist, COCO\'s 17); '
                   'python tools/browse_dataset.py draws the joints with their names')


class CachedImages(TopDownPoseDataset):
    """TopDownPoseDataset that decodes each of its (few) images once: K people are read every iteration."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._images = {}

    def _read(self, path, plan):
        key = (path, plan.reduction)
        if key not in self._images:
            self._images[key] = super()._read(path, plan)
        return self._images[key]     # not written to: the flip and the crop make new arrays


def overfit_people(config: TrainConfig, num_people: int, first: int = 0):
    """(training dataset, eval-mode dataset, indices in the set, the whole split's records) of people
    first ... first + num_people - 1."""
    split = load_split(config.data, config.data.train_set)
    indices = list(range(len(split.records)))[first:first + num_people]
    if not indices:
        raise BadValue(f'--overfit_first {first}: {config.data.train_set} holds {len(split.records)} people, so no '
                       f'person is left from index {first} on; pass --overfit_first below {len(split.records)}.')
    records = [split.records[i] for i in indices]
    make = lambda is_train: CachedImages(records, split.image_dir, split.layout, config.data, is_train)  # noqa: E731
    return make(True), make(False), indices, split.records


def _batches(dataset, batch_size: int) -> List[dict]:
    return list(eval_loader(dataset, batch_size, workers=0))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def check_target_weights(batches: List[dict], num_people: int) -> Finding:
    total = float(sum(b['target_weight'].numpy().sum() for b in batches))
    joints = sum(int(np.prod(b['target_weight'].shape)) for b in batches)
    return Finding('overfit: target weights not all zero', PASS if total > 0 else FAIL,
                   f'{total:g} of {joints} joint weights on', '> 0',
                   'every joint is marked invisible: check joints_vis (MPII) / the keypoint visibility flags v '
                   '(COCO) of your annotations', {'target_weight_sum': total, 'people': num_people})


def _train(training, dataset, batch_size: int, iterations: int, seed: int, progress) -> List[float]:
    losses, state, epoch = [], TrainState(), 0
    loader = train_loader(dataset, batch_size, workers=0, seed=seed)
    training.model.train()
    while len(losses) < iterations:
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            loss, _, _ = train_step(training, batch, state, stop_requested=False)
            losses.append(loss)
            if len(losses) % 100 == 0:
                progress(f'overfit iteration {len(losses)}/{iterations}: loss {np.nanmean(losses[-10:]):.6f}')
            if len(losses) >= iterations:
                break
        epoch += 1
    return losses


@paddle.no_grad()
def _train_and_eval_mode(model, images) -> tuple:
    """(heatmaps in train mode, in eval mode) of one batch; the train-mode pass leaves the statistics as they were."""
    snapshot = StatisticsSnapshot(running_statistics(model))
    model.train()
    train_mode = model(images)[-1].astype('float32').numpy()
    snapshot.restore()
    model.eval()
    return train_mode, model(images)[-1].astype('float32').numpy()


@paddle.no_grad()
def _stacks(model, images) -> int:
    return len(model(images))


def _empty_heatmap_loss(criterion, batches: List[dict], stacks: int) -> float:
    losses = []
    for b in batches:
        zeros = paddle.zeros_like(b['target'])
        losses.append(float(criterion([zeros] * stacks, b['target'], b['target_weight'])))
    return float(np.mean(losses))


def check_loss(losses: List[float], empty_loss: float) -> Finding:
    finite = np.asarray(losses, dtype=np.float64)
    tail = max(1, len(finite) // 10)
    first = float(np.nanmean(finite[:5]))
    final = float(np.nanmean(finite[-tail:]))
    ratio = final / empty_loss if empty_loss > 0 else float('nan')
    ok = np.isfinite(final) and ratio < LOSS_FRACTION
    return Finding('overfit: loss falls', PASS if ok else FAIL,
                   f'{first:.3g} -> {final:.3g} (mean of the last {tail}), {ratio:.2f} x the loss of empty '
                   f'heatmaps ({empty_loss:.3g})', f'< {LOSS_FRACTION} x the loss of empty heatmaps',
                   'the network did not fit K people: check --lr (too small or too large), the optimizer, that the '
                   'targets show the joints (python tools/browse_dataset.py), and non-finite steps in the log',
                   {'first_loss': first, 'final_loss': final, 'empty_heatmap_loss': empty_loss,
                    'losses': [float(v) for v in finite[::max(1, len(finite) // 50)]]})


def check_spread(heatmaps: np.ndarray, visible: np.ndarray) -> Finding:
    """At most STUCK_SHARE of the annotated joints [N, K] at one heatmap location of heatmaps [N, K, h, w]."""
    coords, maxvals = get_max_preds(heatmaps)
    points = coords[visible].astype(int)                  # [M, 2] heatmap (x, y) of the annotated joints
    if not len(points):
        return Finding('overfit: predictions not stuck at one place', NOT_RUN, '-', fix='no annotated joint')
    places, counts = np.unique(points, axis=0, return_counts=True)
    top = int(np.argmax(counts))
    share, (x, y) = counts[top] / len(points), places[top]
    h, w = heatmaps.shape[2:]
    where = ('the crop origin (0, 0)' if (x, y) == (0, 0) else
             'the centre' if abs(x - (w - 1) / 2) <= 1 and abs(y - (h - 1) / 2) <= 1 else f'({x}, {y})')
    fix = (f'the predictions sit at {where}: '
           + ('the heatmaps are <= 0 everywhere (decoding falls back to the origin): check the last layer, the '
              'loss weights and that --lr is not zero' if (x, y) == (0, 0) else
              'the network ignores its input: check the image normalisation (mean / std), that the crops show the '
              'people (python tools/browse_dataset.py) and the lr'))
    return Finding('overfit: predictions not stuck at one place', PASS if share <= STUCK_SHARE else FAIL,
                   f'{share:.0%} of {len(points)} annotated joints at {where} (heatmap {w}x{h}); {len(places)} '
                   'distinct places', f'<= {STUCK_SHARE:.0%} at one place', fix,
                   {'share_at_one_place': float(share), 'place_xy': [int(x), int(y)],
                    'negative_maxima': int(np.sum(maxvals[visible] <= 0))})


def check_batchnorm_modes(train_mode: np.ndarray, eval_mode: np.ndarray) -> Finding:
    diff = _relative(eval_mode, train_mode)
    return Finding('overfit: eval-mode output = train-mode output', PASS if diff < BATCHNORM_BAR else FAIL,
                   f'relative difference {diff:.3f} of the heatmaps of one batch', f'< {BATCHNORM_BAR}',
                   'the BatchNorm running statistics do not match the batches: check that BatchNorm layers are in '
                   'train mode while training and that their momentum is Paddle\'s (0.9 = PyTorch\'s 0.1), and '
                   'that --batch_size is not 1', {'relative_difference': diff})


class Scorer:
    """The score of the K people's heatmaps [N, K, h, w]: PCKh@0.5 Mean (percent) when the set has a gt_<set>.mat
    (MPII), else HRNet's training accuracy (percent of the annotated joints)."""

    def __init__(self, config: TrainConfig, indices: List[int], batches: List[dict]):
        self.codec = codec_for(config.data, config.test)
        self.centers = np.concatenate([b['center'].numpy() for b in batches])
        self.scales = np.concatenate([b['scale'].numpy() for b in batches])
        self.targets = np.concatenate([b['target'].numpy() for b in batches])
        self.gt = people_ground_truth(config, indices)
        self.name = 'PCKh@0.5' if self.gt is not None else 'heatmap accuracy'
        self.bar = PCKH_BAR if self.gt is not None else ACCURACY_BAR

    def accuracy(self, heatmaps: np.ndarray) -> float:
        return 100.0 * heatmap_accuracy(heatmaps, self.targets, ACCURACY_THRESHOLD)

    def __call__(self, heatmaps: np.ndarray) -> float:
        if self.gt is None:
            return self.accuracy(heatmaps)
        from lib.core.mpii_eval import evaluate_pckh
        preds, _ = self.codec.decode(heatmaps, self.centers, self.scales)
        with np.errstate(invalid='ignore', divide='ignore'):
            return evaluate_pckh(preds, self.gt)['Mean']

    @property
    def definition(self) -> str:
        return ('head-normalised, gt_<set>.mat' if self.gt is not None else
                f"HRNet's training accuracy at {ACCURACY_THRESHOLD:g}: argmax within {ACCURACY_THRESHOLD:g} x h/10 of "
                "the target's")


def people_ground_truth(config: TrainConfig, indices: List[int]):
    """The MPIIGroundTruth of the people at `indices` when the set has a gt_<set>.mat (MPII); else None."""
    path = os.path.join(config.data.dataset_root, 'annot', f'gt_{config.data.train_set}.mat')
    if config.data.dataset != 'mpii' or not os.path.isfile(path):
        return None
    from lib.core.mpii_eval import load_mpii_ground_truth
    gt = load_mpii_ground_truth(path)
    if gt.num_samples <= max(indices):
        return None
    return dataclasses.replace(gt, jnt_missing=gt.jnt_missing[:, indices], pos_gt_src=gt.pos_gt_src[..., indices],
                               headboxes_src=gt.headboxes_src[..., indices])


def check_flip(mirrored: float, plain: float, scorer: Scorer, flip_on: bool) -> Finding:
    """For reading, not a bar: measured on the CPU, it did not tell a mixed-side joint order from the real one
    (module docstring); the score row is what fails there."""
    label = 'overfit: mirrored crops against the crops'
    if not flip_on:
        return Finding(label, NOT_RUN, '-', fix='trained without flip augmentation (--no_flip)')
    ratio = mirrored / plain if plain > 0 else 0.0
    return Finding(label, INFO, f'{scorer.name} {mirrored:.1f} on the mirrored crops (flipped back), {plain:.1f} on '
                   f'the crops ({ratio:.2f} x)', 'well below 1 x on a network that fits: the joint order disagrees '
                   'with the flip pairs; ' + JOINT_ORDER_FIX, data={'mirrored': mirrored, 'plain': plain, 'ratio': ratio})


def check_score(score: float, accuracy: float, scorer: Scorer, flip_test: bool, num_people: int,
                iterations: int) -> Finding:
    also = f'; heatmap accuracy {accuracy:.1f}' if scorer.gt is not None else ''
    return Finding(f'overfit: training {scorer.name} of the K people', PASS if score >= scorer.bar else FAIL,
                   f'{score:.1f} on {num_people} people after {iterations} iterations (eval mode, no augmentation, '
                   f'flip test {"on" if flip_test else "off"}){also}', f'>= {scorer.bar:g}; {scorer.definition}',
                   'the network cannot fit these people: ' + JOINT_ORDER_FIX + '; then the crops (centre / scale: '
                   'python tools/browse_dataset.py), --lr and --overfit_iters',
                   {'score': score, 'metric': scorer.name, 'heatmap_accuracy': accuracy})


def overfit_check(config: TrainConfig, num_people: int = DEFAULT_PEOPLE, iterations: int = DEFAULT_ITERATIONS,
                  first: int = 0, progress: Callable[[str], None] = print) -> List[Finding]:
    """The findings of training the configured model on people first ... first + num_people - 1 of
    config.data.train_set for `iterations` iterations (module docstring)."""
    train_set, eval_set, indices, all_records = overfit_people(config, num_people, first)
    people = len(indices)
    batch_size = min(config.batch_size, people)
    batches = _batches(eval_set, batch_size)
    findings = [Finding('overfit: people', INFO, f'{people} people ({config.data.train_set} {first} ... '
                        f'{first + people - 1}), batch {batch_size}, {iterations} iterations',
                        f'{config.model.label} at {config.data.input_wh[1]}x{config.data.input_wh[0]}, '
                        f'{config.optimizer} lr {config.lr:g}, --amp {config.amp}')]
    # The joint order from the whole set's annotations: a consistent relabelling trains as well as the right order.
    findings.append(check_joint_order(all_records, train_set.layout, config.data.train_set))
    findings.append(check_target_weights(batches, people))
    if any(f.result == FAIL for f in findings[-2:]):
        return findings       # wrong labels or nothing to learn: fix that first, the training checks would mislead
    # The configured recipe, but a constant lr after the warm-up: lr_steps count epochs, and K people make an epoch
    # of one or two iterations.
    recipe = dataclasses.replace(config, lr_steps=[], epochs=iterations, max_iters=iterations)
    paddle.seed(config.seed)
    model, training, _ = build_training(recipe, None, iters_per_epoch=1, num_ranks=1, logger=QUIET)
    training.max_nonfinite = iterations + 1     # a diverging run is reported by the loss check, not raised
    progress(f'overfitting {people} people of {config.data.train_set} for {iterations} iterations ...')
    losses = _train(training, train_set, batch_size, iterations, config.seed, progress)

    flip_pairs = train_set.layout.flip_pairs
    autocast = training.precision.eval_autocast
    shift = train_set.codec.flip_shift
    train_mode, eval_mode = _train_and_eval_mode(model, batches[0]['image'])
    heatmaps, plain, mirrored = [], [], []
    for b in batches:
        heatmaps.append(predict_heatmaps(model, b['image'], flip_pairs, config.test, autocast, shift=shift))
        no_flip = dataclasses.replace(config.test, flip_test=False)
        plain.append(predict_heatmaps(model, b['image'], flip_pairs, no_flip, autocast))
        mirrored.append(flip_back(predict_heatmaps(model, paddle.flip(b['image'], axis=[3]), flip_pairs, no_flip,
                                                   autocast), flip_pairs, shift=shift))
    heatmaps, plain, mirrored = (np.concatenate(h) for h in (heatmaps, plain, mirrored))
    visible = np.concatenate([b['target_weight'].numpy()[..., 0] for b in batches]) > 0
    scorer = Scorer(config, indices, batches)
    stacks = _stacks(model, batches[0]['image'])
    score = scorer(heatmaps)
    findings += [check_loss(losses, _empty_heatmap_loss(training.criterion, batches, stacks)),
                 check_spread(heatmaps, visible),
                 check_batchnorm_modes(train_mode, eval_mode),
                 check_flip(scorer(mirrored), scorer(plain), scorer, config.data.flip),
                 check_score(score, scorer.accuracy(heatmaps), scorer,
                             config.test.flip_test, people, iterations)]
    return findings
