"""Training parity with PyTorch runs of the references' recipes.

For each recipe: a PyTorch model with the reference's parameter names and a random init, converted with the
project's converter; the same batches, taken once from the project's data pipeline; train mode (batch statistics,
running-statistic updates). K steps are run in PyTorch as the reference trains (its optimizer and schedulers,
HRNet's JointsMSELoss over the stacks) and with the project's own train_step, optimizer and schedule. The loss and
the learning rate must agree at every step, and every weight and running statistic at the end.

Both sides run in float64. In float32 the two frameworks part after one step, for a reason that is not a
difference of method: parameters whose true gradient is 0 (a conv bias before a BatchNorm) get float32 noise of
1e-10 to 1e-7, different in each framework, and RMSprop and Adam turn any gradient well above eps into a
full-size step. Measured in float32 on the Newell recipe: loss relative difference 5e-6 at step 1, 6e-3 at step 2,
0.16 at step 6. In float64 that noise is below eps, and the bars can be tight: each is about 100x the largest
difference measured on this machine, and far under what an eps placement or a schedule one step off gives
(test_the_bars_catch_a_wrong_optimizer_and_a_shifted_schedule). Run with `-s` to see the per-step tables.
"""
import contextlib
import dataclasses
import logging
import warnings
from typing import Dict, List, Tuple

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch', reason='torch (CPU) runs the reference side of the parity tests: pip install torch')

from lib.config import DataConfig  # noqa: E402
from lib.convert import convert_state, get_converter  # noqa: E402
from lib.core.engine import Training, TrainState, train_step  # noqa: E402
from lib.core.loss import StackedHeatmapLoss  # noqa: E402
from lib.core.optim import build_optimizer, build_scheduler  # noqa: E402
from lib.core.precision import Precision  # noqa: E402
from lib.datasets.loaders import build_dataset, train_loader  # noqa: E402
from lib.datasets.synthetic import make_synthetic_mpii  # noqa: E402
from lib.models import build_model  # noqa: E402
from benchmarks.torch_reference import JointsMSELoss  # noqa: E402
from tests import test_convert_princeton as princeton  # noqa: E402
from tests import test_convert_references as references  # noqa: E402

STEPS = 20


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    source_format: str              # the converter that maps the PyTorch names to ours
    optimizer: str                  # 'rmsprop' or 'adam', as build_optimizer names them
    lr: float
    iters_per_epoch: int            # tiny epochs, so that a milestone falls inside the test
    lr_steps: Tuple[int, ...]       # epochs
    warmup_iters: int = 0
    warmup_ratio: float = 0.001
    start_iter: int = 0             # the schedule is advanced this far before the first step
    weight_decay: float = 0.0
    stack_loss: str = 'sum'
    use_joints_weight: bool = False
    input_size: int = 64
    batch_size: int = 2


RECIPES = {
    # Newell et al.: RMSprop 2.5e-4 (Torch's update), loss summed over the 2 stacks (HRNet's trainer, Newell's Torch
    # code); x0.1 at an epoch milestone (iteration 15). 128 px and batch 4, so that the hourglass's lowest level
    # (2 x 2) normalises 16 values per channel: with 4 values (64 px) a float64 run is chaotic from step 3 on in
    # both frameworks alike (relative loss difference 1e-6 at step 2, 8e-4 at step 3, 0.2 at step 5).
    'newell_hourglass': Recipe('newell_hourglass', 'princeton_hourglass', 'rmsprop', 2.5e-4, 5, (3,),
                               input_size=128, batch_size=4),
    # RMSprop with L2 weight decay and the mean over 2 stacks (princeton-vl's), on MMPose's (narrow) hourglass.
    'rmsprop_weight_decay_stack_mean': Recipe('rmsprop_weight_decay_stack_mean', 'mmpose_hourglass2', 'rmsprop',
                                              2.5e-4, 5, (3,), weight_decay=1e-2, stack_loss='mean'),
    # HRNet SimpleBaselines: Adam 1e-3, JointsMSELoss with target weights and the joint weights; x0.1 at epochs 3, 5.
    'pose_resnet': Recipe('pose_resnet', 'hrnet_pose_resnet', 'adam', 1e-3, 4, (3, 5), use_joints_weight=True,
                          batch_size=4),
    # MMPose hourglass52: Adam 5e-4, linear warm-up from 0.001 over 500 iterations, x0.1 at an epoch milestone.
    # 7 iterations per epoch; the test runs iterations 491-510, across the warm-up's end (500) and epoch 72 (504).
    'hourglass52': Recipe('hourglass52', 'mmpose_hourglass', 'adam', 5e-4, 7, (72,), warmup_iters=500,
                          start_iter=490),
}

# Bars: about 100x the largest difference measured on this machine over the recipes (loss 5.3e-8, lr 1.3e-15,
# weights 6.2e-8, statistics 3.3e-7, all in float64). The mutations give loss 0.17 / 0.06, weights 0.14 / 0.05.
LOSS_BAR = 5e-6         # |loss ours - loss reference| / loss reference, at every step
LR_BAR = 1e-9           # relative, at every step
WEIGHT_BAR = 1e-5       # max |ours - reference| / max |reference|, per tensor, after the last step
STATISTIC_BAR = 5e-5    # the same for the BatchNorm running means and variances


# --- the reference side, in PyTorch

def torch_model(recipe: Recipe):
    """A reference-named PyTorch model with a random init (BatchNorm parameters and statistics away from 1/0)."""
    if recipe.source_format == 'princeton_hourglass':
        return princeton.make_posenet(nstack=2, inp_dim=256, seed=0)
    if recipe.source_format == 'hrnet_pose_resnet':
        return references.randomised(references.HRNetPoseResNet(18, 16), seed=0)
    stacks = 2 if recipe.source_format == 'mmpose_hourglass2' else 1
    return references.mmpose_hourglass(stacks, 'keypoint_head', seed=0)


def converter_of(recipe: Recipe) -> str:
    return 'mmpose_hourglass' if recipe.source_format == 'mmpose_hourglass2' else recipe.source_format


def torch_outputs(recipe: Recipe, net, images: np.ndarray) -> List:
    """The reference's forward: a list of [N, K, h, w], one per supervised stack."""
    x = torch.from_numpy(images)
    if recipe.source_format == 'princeton_hourglass':          # PoseNet takes [N, H, W, 3], gives [N, S, K, h, w]
        stacked = net(x.permute(0, 2, 3, 1))
        return [stacked[:, s] for s in range(stacked.shape[1])]
    out = net(x)
    return out if isinstance(out, list) else [out]


def torch_optimizer(recipe: Recipe, net):
    params = [p for p in net.parameters() if p.requires_grad]
    if recipe.optimizer == 'rmsprop':
        return torch.optim.RMSprop(params, lr=recipe.lr, alpha=0.99, eps=1e-8, momentum=0,
                                   weight_decay=recipe.weight_decay)
    return torch.optim.Adam(params, lr=recipe.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=recipe.weight_decay)


class TorchSchedule:
    """The reference's schedule with PyTorch's own schedulers: MMEngine/mmcv's LinearLR warm-up stepped every
    iteration, MultiStepLR stepped at the end of every epoch (HRNet, MMPose by_epoch)."""

    def __init__(self, recipe: Recipe, optimizer):
        self.recipe, self.optimizer, self.iteration = recipe, optimizer, 0
        self.warmup = (torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=recipe.warmup_ratio, end_factor=1.0,
                                                         total_iters=recipe.warmup_iters)
                       if recipe.warmup_iters else None)
        self.steps = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(recipe.lr_steps), gamma=0.1)

    def step(self) -> None:
        self.iteration += 1
        if self.warmup is not None:
            self.warmup.step()
        if self.iteration % self.recipe.iters_per_epoch == 0:
            self.steps.step()

    def lr(self) -> float:
        return self.optimizer.param_groups[0]['lr']


def run_reference(recipe: Recipe, net, batches: List[Dict[str, np.ndarray]]):
    net.train()
    optimizer = torch_optimizer(recipe, net)
    schedule = TorchSchedule(recipe, optimizer)
    criterion = JointsMSELoss(use_target_weight=True)
    with warnings.catch_warnings():      # "lr_scheduler.step() before optimizer.step()": the advance is on purpose
        warnings.simplefilter('ignore')
        for _ in range(recipe.start_iter):
            schedule.step()
    losses, lrs = [], []
    for batch in batches:
        lrs.append(schedule.lr())
        outputs = torch_outputs(recipe, net, batch['image'])
        target, weight = torch.from_numpy(batch['target']), torch.from_numpy(batch['target_weight'])
        per_stack = [criterion(out, target, weight) for out in outputs]      # HRNet's trainer adds them up
        loss = sum(per_stack[1:], per_stack[0])
        if recipe.stack_loss == 'mean':
            loss = loss / len(per_stack)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses, lrs


# --- the project's side

def run_project(recipe: Recipe, model, batches, optimizer_factory=None, schedule_shift: int = 0):
    model.train()
    scheduler = build_scheduler(recipe.lr, recipe.lr_steps, 0.1, recipe.iters_per_epoch, recipe.warmup_iters,
                                recipe.warmup_ratio)
    factory = optimizer_factory or (lambda scheduler, params: build_optimizer(recipe.optimizer, scheduler, params,
                                                                              recipe.weight_decay))
    optimizer = factory(scheduler, model.parameters())
    for _ in range(recipe.start_iter + schedule_shift):
        scheduler.step()
    training = Training(model, StackedHeatmapLoss(recipe.stack_loss), optimizer, scheduler, Precision('off'),
                        logging.getLogger('parity'), num_epochs=1, total_iters=len(batches), log_every=1,
                        max_nonfinite=1)
    state, losses, lrs = TrainState(), [], []
    for batch in batches:
        lrs.append(optimizer.get_lr())
        tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
        loss, _, _ = train_step(training, tensors, state, stop_requested=False)
        losses.append(loss)
    assert state.applied_steps == len(batches)
    return losses, lrs


# --- shared pieces

@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('parity_mpii'))
    make_synthetic_mpii(root, num_train=STEPS * 2, num_valid=2, seed=3)
    return root


def pipeline_batches(data_root: str, recipe: Recipe) -> List[Dict[str, np.ndarray]]:
    """STEPS batches from the project's training pipeline (augmentation on), as numpy, taken once."""
    size = recipe.input_size
    config = DataConfig(dataset_root=data_root, input_wh=(size, size), heatmap_wh=(size // 4, size // 4),
                        use_joints_weight=recipe.use_joints_weight)
    dataset = build_dataset(config, 'train', is_train=True)
    loader = train_loader(dataset, recipe.batch_size, workers=0, seed=0)
    batches = []
    for epoch in range(4):
        loader.batch_sampler.set_epoch(epoch)
        batches += [{k: batch[k].numpy() for k in ('image', 'target', 'target_weight')} for batch in loader]
    return batches[:STEPS]


def float64_state(recipe: Recipe, net) -> Dict[str, np.ndarray]:
    """The PyTorch model's float64 state under our names. The project's converter maps the names (it writes float32,
    as checkpoints are): it is run on arrays that hold their source key's index, which a pure renaming carries."""
    source = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    keys = sorted(source)
    marked, _ = get_converter(converter_of(recipe)).convert(
        {k: np.full(source[k].shape, i, dtype=np.float32) for i, k in enumerate(keys)})
    state = {}
    for target, marks in marked.items():
        index = int(marks.flat[0])
        assert (marks == index).all(), f'{target} is not a renaming of one source tensor'
        state[target] = source[keys[index]].astype(np.float64).reshape(marks.shape)
    return state


@contextlib.contextmanager
def float64_models():
    previous = paddle.get_default_dtype()
    paddle.set_default_dtype('float64')
    try:
        yield
    finally:
        paddle.set_default_dtype(previous)


def start(recipe: Recipe, data_root: str):
    """(torch model, our model with the same weights, batches), all in float64. The first conversion, in float32,
    is the project's whole converter with its checks; the float64 model is built from what it inferred."""
    net = torch_model(recipe).double()
    conversion = convert_state(converter_of(recipe), {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()},
                               recipe.name)
    with float64_models():
        model = build_model(conversion.model_name, **conversion.model_kwargs)
    model.set_state_dict(float64_state(recipe, net))
    batches = [{k: v.astype(np.float64) for k, v in batch.items()}
               for batch in pipeline_batches(data_root, recipe)]
    return net, model, batches


def relative(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / max(abs(theirs), 1e-30)


def state_differences(model, reference: Dict[str, object]) -> Tuple[float, float, str, str]:
    """(worst weight difference, worst statistic difference, their names), each max |a - b| / max |b|."""
    trainable = {name for name, p in model.named_parameters() if not p.stop_gradient}
    worst = {True: (0.0, ''), False: (0.0, '')}
    for name, tensor in model.state_dict().items():
        ours, theirs = tensor.numpy().astype(np.float64), np.asarray(reference[name], dtype=np.float64)
        diff = float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))
        is_weight = name in trainable
        if diff >= worst[is_weight][0]:
            worst[is_weight] = (diff, name)
    return worst[True][0], worst[False][0], worst[True][1], worst[False][1]


def report(recipe: Recipe, ours: List[float], theirs: List[float], lrs_ours, lrs_theirs) -> float:
    print(f'\n{recipe.name}: step | loss ours | loss reference | relative difference | lr ours | lr reference')
    for i, (a, b, la, lb) in enumerate(zip(ours, theirs, lrs_ours, lrs_theirs)):
        print(f'{recipe.start_iter + i + 1:4d} | {a:.8f} | {b:.8f} | {relative(a, b):.1e} | {la:.4e} | {lb:.4e}')
    return max(relative(a, b) for a, b in zip(ours, theirs))


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(RECIPES))
def test_training_trajectory_matches_the_pytorch_reference(name, data_root):
    recipe = RECIPES[name]
    net, model, batches = start(recipe, data_root)
    torch.manual_seed(0)
    theirs, lrs_theirs = run_reference(recipe, net, batches)
    ours, lrs_ours = run_project(recipe, model, batches)
    worst_loss = report(recipe, ours, theirs, lrs_ours, lrs_theirs)
    worst_lr = max(relative(a, b) for a, b in zip(lrs_ours, lrs_theirs))
    weights, statistics, weight_name, statistic_name = state_differences(model, float64_state(recipe, net))
    print(f'{recipe.name}: worst loss {worst_loss:.1e}, lr {worst_lr:.1e}, weights {weights:.1e} ({weight_name}), '
          f'statistics {statistics:.1e} ({statistic_name})')
    assert len(set(np.round(lrs_ours, 12))) > 1, 'the schedule must change inside the test'
    assert worst_lr < LR_BAR
    assert worst_loss < LOSS_BAR
    assert weights < WEIGHT_BAR
    assert statistics < STATISTIC_BAR


def paddle_rmsprop(scheduler, params):
    return paddle.optimizer.RMSProp(learning_rate=scheduler, rho=0.99, epsilon=1e-8, momentum=0.0, parameters=params,
                                    weight_decay=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize('mutation', ['paddle_rmsprop', 'schedule_one_step_late'])
def test_the_bars_catch_a_wrong_optimizer_and_a_shifted_schedule(mutation, data_root):
    """The harness is only worth its bars: Paddle's own RMSProp (eps inside the root) or a schedule one step off
    must fail them."""
    recipe = RECIPES['rmsprop_weight_decay_stack_mean' if mutation == 'paddle_rmsprop' else 'hourglass52']
    net, model, batches = start(recipe, data_root)
    theirs, lrs_theirs = run_reference(recipe, net, batches)
    if mutation == 'paddle_rmsprop':
        ours, lrs_ours = run_project(recipe, model, batches, optimizer_factory=paddle_rmsprop)
    else:
        ours, lrs_ours = run_project(recipe, model, batches, schedule_shift=-1)
    worst_loss = max(relative(a, b) for a, b in zip(ours, theirs))
    worst_lr = max(relative(a, b) for a, b in zip(lrs_ours, lrs_theirs))
    weights, _, _, _ = state_differences(model, float64_state(recipe, net))
    print(f'{mutation}: worst loss {worst_loss:.1e}, lr {worst_lr:.1e}, weights {weights:.1e}')
    assert worst_loss > LOSS_BAR or worst_lr > LR_BAR
    assert weights > WEIGHT_BAR
