r"""Evaluate on MPII validation (PCKh, HRNet protocol): a trained model, saved predictions, or the oracle.

    python val.py --image_size 256 --dataset_root data/mpii \
        --pretrained_model output/mpii_hourglass8_256x256/best_model/model.pdparams
    python val.py --preds_file pred.mat --dataset_root data/mpii       # no model, no images
    python val.py --oracle --image_size 384 --dataset_root data/mpii   # ground truth through the target pipeline

Prints the per-joint table and, last, one `[EVAL] Ankle=... Mean=...` line; writes results.json and
pred.mat (variable `preds`, [N, 16, 2], 1-based pixels, valid.json order) to --output_dir.
"""
import argparse
import dataclasses
import os
import sys
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
from lib.config import PRESETS, ModelConfig, TestConfig, to_dict
from lib.core.evaluation import (eval_line, evaluate_predictions, format_table, load_predictions,
                                 oracle_predictions, write_results)
from lib.core.metrics import load_mpii_ground_truth
from lib.datasets.mpii import load_mpii_annotations
from lib.inference.conventions import conventions_for_weights, conventions_from_config


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset_root', default='data/mpii', help='MPII in the HRNet layout')
    p.add_argument('--valid_set', default='valid', help='annotation file to evaluate (default valid)')
    p.add_argument('--image_size', type=int, default=None,
                   help='input side: 256 or 384 (default: from the run\'s config.json, else 256)')
    p.add_argument('--pretrained_model', help='.pdparams written by train.py (best_model/model.pdparams)')
    p.add_argument('--model', default=None, choices=sorted(PRESETS),
                   help='architecture (default: from config.json beside the weights, else hourglass)')
    p.add_argument('--num_stacks', type=int, default=None, help='hourglass stacks (default: from config.json beside the weights, else 8)')
    p.add_argument('--num_features', type=int, default=None, help='default: from config.json, else 256')
    p.add_argument('--no_flip_test', action='store_true', help='turn the flip test off')
    p.add_argument('--no_shift_heatmap', action='store_true', help='flip test without the one-column shift')
    p.add_argument('--no_post_process', action='store_true', help='decode without the quarter-pixel refinement')
    p.add_argument('--sigma', type=float, default=2.0, help='target sigma for --oracle (default 2)')
    p.add_argument('--batch_size', type=int, default=32)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--device', choices=('auto', 'cpu', 'gpu'), default='auto')
    p.add_argument('--output_dir', default='output/val', help='where results.json and pred.mat go')
    p.add_argument('--preds_file', help='evaluate a saved pred.mat instead of running a model')
    p.add_argument('--oracle', action='store_true',
                   help='evaluate the ground truth pushed through crop -> target -> decode (no model, no images)')
    args = p.parse_args(argv)
    modes = sum([bool(args.pretrained_model), bool(args.preds_file), args.oracle])
    if modes != 1:
        p.error('give exactly one of --pretrained_model, --preds_file or --oracle')
    return args


def conventions(args):
    """(ModelConfig, DataConfig, TestConfig): flags first, then the config.json beside the weights, then
    the model's preset. Input normalisation and flip-test conventions travel with the weights."""
    overrides = {'model': args.model, 'image_size': args.image_size, 'num_stacks': args.num_stacks,
                 'num_features': args.num_features, 'flip_test': False if args.no_flip_test else None,
                 'shift_heatmap': False if args.no_shift_heatmap else None,
                 'post_process': False if args.no_post_process else None, 'batch_size': args.batch_size,
                 'dataset_root': args.dataset_root, 'valid_set': args.valid_set}
    if args.pretrained_model:
        return conventions_for_weights(args.pretrained_model, overrides)
    return conventions_from_config({}, overrides)


def model_predictions(args, model_cfg: ModelConfig, data, test: TestConfig):
    # Paddle is imported here only, so that --preds_file and --oracle start fast.
    from lib.core.engine import predict
    from lib.datasets.loaders import build_mpii_dataset, eval_loader
    from lib.datasets.skeletons import MPII
    from lib.models import build_model_from
    from lib.utils.checkpoint import load_weights
    from lib.utils.device import select_device

    select_device(args.device)
    dataset = build_mpii_dataset(dataclasses.replace(data, dataset_root=args.dataset_root), args.valid_set,
                                 is_train=False)
    model = build_model_from(model_cfg)
    load_weights(model, args.pretrained_model)
    loader = eval_loader(dataset, args.batch_size, args.workers)
    preds, _ = predict(model, loader, len(dataset), MPII.flip_pairs, test)
    name = f'{model_cfg.label}_{data.input_wh[0]}'
    return preds, name, {'model': to_dict(model_cfg), 'data': to_dict(data)}


def main(argv=None) -> int:
    args = parse_args(argv)
    model_cfg, data, test = conventions(args)
    gt = load_mpii_ground_truth(os.path.join(args.dataset_root, 'annot', f'gt_{args.valid_set}.mat'))
    if args.preds_file:
        preds, name, extra = load_predictions(args.preds_file, gt.num_samples), 'preds_file', {
            'preds_file': os.path.abspath(args.preds_file)}
    elif args.oracle:
        size = args.image_size or 256
        records = load_mpii_annotations(args.dataset_root, args.valid_set)
        preds = oracle_predictions(records, (size, size), (size // 4, size // 4), args.sigma,
                                   refine=test.post_process)
        name, extra = f'oracle_{size}', {'oracle': {'image_size': size, 'sigma': args.sigma}}
    else:
        preds, name, extra = model_predictions(args, model_cfg, data, test)
    extra['test'] = to_dict(test)
    metrics = evaluate_predictions(preds, gt)
    write_results(args.output_dir, metrics, preds, extra)
    print(format_table(metrics, name))
    print(f'Wrote {os.path.join(args.output_dir, "results.json")} and pred.mat')
    print(eval_line(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(main())
