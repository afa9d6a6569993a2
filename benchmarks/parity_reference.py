"""The reference side of benchmarks/learning_parity.py: one whole training run in PyTorch, written as the reference
repositories write it, on the data of a train.py configuration.

    princeton-vl's PoseNet (benchmarks/torch_reference.py), PyTorch's BatchNorm and default initialisation
    torch.optim.RMSprop / Adam (eps outside the root: PyTorch's own), no scheduler beyond the recipe's milestones
    HRNet's JointsMSELoss on every stack, summed (HRNet's trainer; Newell's Torch code)
    validation after every epoch: model.eval(), HRNet's flip test (flip_back, one-column shift), the project's
    decoder and PCKh evaluator (both checked against HRNet and MMPose in the tests)

The data are the project's dataset class and seeded sampler, fed the configuration train.py resolves from the same
flags, so that for one seed both sides see the same crops in the same order. Run by learning_parity.py:

    python benchmarks/parity_reference.py --init init.pt --output reference.json -- <train.py flags>
"""
import argparse
import dataclasses
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.torch_reference import JointsMSELoss, PoseNet  # noqa: E402
from lib.cli import TRAINING_GROUPS, add_front_door, flag_values, script_parser  # noqa: E402
from lib.config import TrainConfig, resolve_config  # noqa: E402
from lib.models import check_model  # noqa: E402
from lib.core.evaluators import build_evaluator  # noqa: E402
from lib.datasets.codec import codec_for  # noqa: E402
from lib.datasets.loaders import build_dataset, eval_loader, train_loader  # noqa: E402


def flip_back(heatmaps: torch.Tensor, flip_pairs) -> torch.Tensor:
    """HRNet lib/utils/transforms.flip_back: mirror [N, K, h, w] and swap the left/right joints."""
    flipped = heatmaps.flip(3).clone()
    for left, right in flip_pairs:
        flipped[:, [left, right]] = flipped[:, [right, left]]
    return flipped


def heatmaps_of(net: PoseNet, images: torch.Tensor, flip_pairs, test) -> np.ndarray:
    """HRNet's validate(): the last stack's heatmaps, averaged with the flipped input's (shifted one column)."""
    output = net(images.permute(0, 2, 3, 1))[:, -1]          # PoseNet takes [N, H, W, 3], gives [N, S, K, h, w]
    if test.flip_test:
        flipped = flip_back(net(images.flip(3).permute(0, 2, 3, 1))[:, -1], flip_pairs)
        if test.shift_heatmap:
            flipped[:, :, :, 1:] = flipped.clone()[:, :, :, 0:-1]
        output = (output + flipped) * 0.5
    return output.numpy()


@torch.no_grad()
def evaluate(net: PoseNet, dataset, evaluator, config: TrainConfig, output_dir: str) -> dict:
    """PCKh of the whole `dataset` in eval mode, through the project's decoder and evaluator."""
    net.eval()
    codec = codec_for(dataset.config, config.test)
    preds = np.zeros((len(dataset), dataset.layout.num_joints, 2))
    for batch in eval_loader(dataset, config.test.batch_size, workers=0):
        heatmaps = heatmaps_of(net, torch.from_numpy(batch['image'].numpy()), dataset.layout.flip_pairs, config.test)
        decoded, _ = codec.decode(heatmaps, batch['center'].numpy(), batch['scale'].numpy())
        preds[batch['index'].numpy().reshape(-1)] = decoded
    return dict(evaluator.evaluate(preds, None, output_dir, {}))


def optimizer_of(config: TrainConfig, net: PoseNet):
    if config.optimizer == 'rmsprop':       # the paper's: rho 0.99, eps 1e-8, no momentum
        return torch.optim.RMSprop(net.parameters(), lr=config.lr, alpha=0.99, eps=1e-8, momentum=0,
                                   weight_decay=config.weight_decay)
    return torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=config.weight_decay)


def split(config: TrainConfig, image_set: str):
    dataset = build_dataset(dataclasses.replace(config.data, reduced_decode=False), image_set, is_train=False,
                            test=config.test)
    return dataset, build_evaluator(config.data, image_set, dataset.records, config.test)


def run(config: TrainConfig, net: PoseNet, fit_set: str, output_dir: str) -> dict:
    """Train config.epochs epochs; the validation Mean after each, and at the end the fit of `fit_set`."""
    train_set = build_dataset(config.data, config.data.train_set, is_train=True)
    loader = train_loader(train_set, config.batch_size, workers=0, seed=config.seed)
    valid, valid_evaluator = split(config, config.data.valid_set)
    optimizer = optimizer_of(config, net)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.lr_steps),
                                                     gamma=config.lr_gamma)
    criterion = JointsMSELoss(use_target_weight=True)
    rows = []
    for epoch in range(config.epochs):
        start = time.time()
        net.train()
        loader.batch_sampler.set_epoch(epoch)
        losses = []
        for batch in loader:
            images, target, weight = (torch.from_numpy(batch[k].numpy()) for k in ('image', 'target', 'target_weight'))
            outputs = net(images.permute(0, 2, 3, 1))
            loss = sum(criterion(outputs[:, s], target, weight) for s in range(outputs.shape[1]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        metrics = evaluate(net, valid, valid_evaluator, config, output_dir)
        rows.append({'epoch': epoch + 1, 'loss': float(np.mean(losses)), 'seconds': time.time() - start, **metrics})
        print(f'reference epoch {epoch + 1}: loss {rows[-1]["loss"]:.6f}, Mean {metrics["Mean"]:.3f}', flush=True)
    fit = None
    if fit_set:
        fit_data, fit_evaluator = split(config, fit_set)
        fit = evaluate(net, fit_data, fit_evaluator, config, os.path.join(output_dir, 'fit'))
    return {'history': rows, 'fit': fit}


def training_config(flags) -> TrainConfig:
    """The configuration train.py resolves from `flags` (its front door: the same groups, preset and checks), less
    its run-folder flags, which the reference has no use for."""
    parser, preset = script_parser(__doc__, flags)
    parser.add_argument('--run_name')
    add_front_door(parser, TRAINING_GROUPS, preset)
    args = parser.parse_args(flags)
    config = resolve_config(flag_values(args, TRAINING_GROUPS), config_file=args.config, sets=args.set)
    check_model(config)
    return config


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--init', required=True, help="the PoseNet's initial state dict (torch.save), as converted for us")
    p.add_argument('--output', required=True, help='JSON of the per-epoch validation and the fit')
    p.add_argument('--fit_set', default='', help='annotation set whose fit is measured after the last epoch')
    p.add_argument('--stem', type=int, required=True, help="PoseNet's stem width")
    p.add_argument('--threads', type=int, default=1, help='CPU threads of PyTorch (train.py gets the same --threads)')
    p.add_argument('train_flags', nargs=argparse.REMAINDER, help='-- and the flags of the train.py run')
    args = p.parse_args(argv)
    config = training_config([f for f in args.train_flags if f != '--'])
    torch.set_num_threads(args.threads)
    net = PoseNet(config.model.num_stacks, config.model.num_features, config.model.num_joints, stem=args.stem)
    net.load_state_dict(torch.load(args.init))
    output_dir = os.path.dirname(os.path.abspath(args.output))
    result = run(config, net, args.fit_set, os.path.join(output_dir, 'reference_eval'))
    with open(args.output, 'w') as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
