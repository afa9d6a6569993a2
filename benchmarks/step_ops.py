"""Operators launched, device-to-host reads and host-to-device copies in one training step
(lib.core.engine.train_step), per model.

On a GPU every operator is a kernel launch, and every read or copy of host data waits for the device (a
synchronisation); none can be timed here, so they are counted (Paddle's profiler on the CPU; patched Tensor
accessors and paddle.to_tensor / assign / set_value, lib/utils/op_count.py).

    python benchmarks/step_ops.py
    python benchmarks/step_ops.py --models hourglass --num_stacks 2 8
    python benchmarks/step_ops.py --unbiased_kernel

--unbiased_kernel answers the BatchNorm probe (lib/models/layers.VARIANCE_PROBE) with "unbiased", as cuDNN's kernel
answers it on a GPU (the layer then runs Paddle's batch_norm alone); the CPU's own kernel is biased, so without it the
count includes the correction's operators. A simulation: what the probe decides on a GPU was read in Paddle's source,
not run.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # run as a script from anywhere
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from lib.core.engine import Training, TrainState, train_step  # noqa: E402
from lib.core.loss import StackedHeatmapLoss  # noqa: E402
from lib.core.optim import build_optimizer, build_scheduler  # noqa: E402
from lib.core.precision import Precision  # noqa: E402
from lib.models import build_model  # noqa: E402
from lib.utils.op_count import host_syncs, operators_launched  # noqa: E402


def step_counts(name: str, num_stacks: int, size: int) -> dict:
    kwargs = {'num_stacks': num_stacks} if name == 'hourglass' else {}
    model = build_model(name, **kwargs)
    scheduler = build_scheduler(2.5e-4, [90], 0.1, iters_per_epoch=100)
    optimizer = build_optimizer('rmsprop', scheduler, model.parameters())
    training = Training(model, StackedHeatmapLoss('sum'), optimizer, scheduler, Precision('off'),
                        logging.getLogger('step_ops'), num_epochs=1, total_iters=10, log_every=100, max_nonfinite=5)
    rng = np.random.RandomState(0)
    heatmap = size // 4
    batch = {'image': paddle.to_tensor(rng.randn(1, 3, size, size).astype('float32')),
             'target': paddle.to_tensor(rng.rand(1, 16, heatmap, heatmap).astype('float32')),
             'target_weight': paddle.ones([1, 16, 1], dtype='float32')}
    state = TrainState()
    train_step(training, batch, state, False)          # creates the optimizer's accumulators
    counts = operators_launched(lambda: train_step(training, batch, state, False))
    with host_syncs() as syncs:
        train_step(training, batch, state, False)
    return {'params': len(model.parameters()), 'ops': sum(counts.values()), 'reads': len(syncs['reads']),
            'copies': len(syncs['copies']), 'top': counts}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=['hourglass', 'hourglass52', 'pose_resnet_50'])
    p.add_argument('--num_stacks', type=int, nargs='+', default=[2, 8])
    p.add_argument('--image_size', type=int, default=64,
                   help='input side (the counts do not depend on it, but for BatchNorm layers left with one value per '
                   'channel, n = 1, which run Paddle\'s layer uncorrected: 72 of the 8-stack hourglass\'s at 64)')
    p.add_argument('--unbiased_kernel', action='store_true',
                   help="answer the BatchNorm probe 'unbiased' (cuDNN's answer on a GPU)")
    args = p.parse_args(argv)
    paddle.set_device('cpu')
    if args.unbiased_kernel:
        from lib.models import layers
        layers.VARIANCE_PROBE.run = lambda dtype, data_format, spatial: layers.ProbeResult(False, 2.0, dtype)
    print('| model | parameter tensors | operators per step | host reads per step | host-to-device copies per step '
          '| syncs per step | most frequent operators |')
    print('|---|---|---|---|---|---|---|')
    for name in args.models:
        for stacks in (args.num_stacks if name == 'hourglass' else [0]):
            row = step_counts(name, stacks, args.image_size if name != 'hourglass52' else max(args.image_size, 128))
            label = f'{name}{stacks or ""}'
            top = ', '.join(f'{op} {n}' for op, n in row['top'].most_common(4))
            print(f'| {label} | {row["params"]} | {row["ops"]} | {row["reads"]} | {row["copies"]} | '
                  f'{row["reads"] + row["copies"]} | {top} |')


if __name__ == '__main__':
    main()
