r"""Evaluate on MPII (PCKh, HRNet protocol) or COCO (keypoint AP, HRNet/SimpleBaselines protocol): a trained
model, saved predictions, or the oracle.

    python val.py --image_size 256 --dataset_root data/mpii \
        --pretrained_model output/mpii_hourglass8_256x256/best_model/model.pdparams
    python val.py --preds_file pred.mat --dataset_root data/mpii       # no model, no images
    python val.py --oracle --image_size 384 --dataset_root data/mpii   # ground truth through the target pipeline

    python val.py --dataset coco --dataset_root data/coco \
        --pretrained_model output/coco_pose_resnet_50_256x192/best_model/model.pdparams            # GT boxes
    python val.py --dataset coco --dataset_root data/coco --pretrained_model ... \
        --det_file data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json
    python val.py --dataset coco --preds_file keypoints_val2017_results.json --dataset_root data/coco
    python val.py --dataset coco --oracle --image_size 256x192 --dataset_root data/coco

Prints the metric table and, last, one `[EVAL] ...` line (MPII: `[EVAL] Ankle=... Mean=...`, COCO:
`[EVAL] AP=... AP.5=...`). Writes results.json and, for MPII, pred.mat (variable `preds`, [N, 16, 2],
1-based pixels, valid.json order), for COCO keypoints_<set>_results.json (COCO results format) to
--output_dir. The dataset, model and input conventions default to the config.json beside the weights.
"""
import argparse
import os
import sys
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
from lib.utils.errors import BadValue, run_cli  # noqa: E402
from lib.utils.threads import set_mkl_cpu_type, use_cpu_threads  # first: before Paddle
from lib.cli import (BOXES, DATA, MODEL, RUN, TEST, add_front_door, add_weights_argument, flag_values,  # noqa: E402
                     print_config, script_parser)
from lib.config import TrainConfig, resolve_config, size_name, to_dict  # noqa: E402
from lib.core.evaluators import build_evaluator  # noqa: E402
from lib.core.validate import oracle  # noqa: E402
from lib.datasets.codec import codec_for  # noqa: E402
from lib.datasets.records import SplitRecords, load_split  # noqa: E402
from lib.datasets.skeletons import layout_of  # noqa: E402
from lib.inference.conventions import weights_config  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402

GROUPS = (DATA, MODEL, TEST, BOXES, RUN)


def parse_args(argv=None) -> argparse.Namespace:
    p, preset = script_parser(__doc__, argv, weights=True)
    add_weights_argument(p)
    p.add_argument('--preds_file', help='evaluate saved predictions instead of running a model: MPII pred.mat, '
                   'COCO results JSON (as written by val.py or HRNet; scored as it is, no rescoring or NMS)')
    p.add_argument('--oracle', action='store_true',
                   help='evaluate the ground truth pushed through crop -> target -> decode, with the targets and '
                   'decoder of --udp, --unbiased_encoding and --decode (no model, no images)')
    p.add_argument('--output_dir', default='output/val', help='where results.json and pred.mat (MPII) or '
                   'keypoints_<set>_results.json (COCO) go (default output/val)')
    add_front_door(p, GROUPS, preset)
    args = p.parse_args(argv)
    if args.print_config:
        return args
    modes = sum([bool(args.pretrained_model), bool(args.preds_file), args.oracle])
    if modes != 1:
        p.error('give exactly one of --pretrained_model, --preds_file or --oracle')
    if args.det_file and args.use_gt_bbox:
        p.error('give either --use_gt_bbox or --det_file, not both')
    if args.det_file and not args.pretrained_model:
        p.error('--det_file boxes are evaluated with a model (--pretrained_model); --oracle needs ground-truth '
                'boxes and --preds_file holds its poses already')
    return args


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The preset of (dataset, model, input size) <- the configuration of the weights (weights_config) <-
    --config <- flags <- --set (lib/config.resolve_config), checked against the model and the dataset."""
    config = resolve_config(flag_values(args, GROUPS), run_config=weights_config(args.pretrained_model),
                            config_file=args.config, sets=args.set)
    if args.pretrained_model:
        from lib.models import check_model     # imports Paddle: only with a model
        check_model(config)
    dataset = config.data.dataset
    if config.test.det_file and not config.test.use_gt_bbox and dataset != 'coco':
        raise BadValue(f'--det_file applies to COCO only, but the dataset is {dataset} (from '
                       f'{config.source_of("data.dataset")}); add --dataset coco.')
    layout = layout_of(dataset)
    if config.model.num_joints != layout.num_joints:
        raise BadValue(f'the model predicts {config.model.num_joints} joints (from '
                       f'{config.source_of("model.num_joints")}), but {dataset} has {layout.num_joints}; evaluate '
                       'these weights on the dataset they were trained on (--dataset).')
    return config


def oracle_suffix(data, test) -> str:
    """'' for HRNet's targets and decoder (the oracle as before DARK and UDP), else e.g. '_unbiased_dark', '_udp'."""
    codec = codec_for(data, test)
    if codec.udp:
        return '_udp'
    if codec.encoding == 'hrnet' and codec.decoder == 'quarter':
        return ''
    return f'_{codec.encoding}_{codec.decoder}'


def run_model(args, config: TrainConfig, split: SplitRecords):
    """(preds [N, K, 2] image pixels, maxvals [N, K, 1], name, extra) of the flip-tested model on `split`."""
    from lib.core.validate import predict_split   # imports Paddle: --preds_file and --oracle start fast without
    from lib.utils.logger import setup_logger
    use_cpu_threads(args.threads)
    preds, maxvals = predict_split(args.pretrained_model, config.model, config.data, config.test, split,
                                   config.device, config.workers, logger=setup_logger(name='val', stream=sys.stderr))
    name = f'{config.model.label}_{size_name(config.data.input_wh)}'
    return preds, maxvals, name, {'model': to_dict(config.model), 'data': to_dict(config.data)}


def main(argv=None) -> int:
    args = parse_args(argv)
    set_mkl_cpu_type()      # before Paddle is imported
    config = build_config(args)
    if args.print_config:
        return print_config(config)
    data, test = config.data, config.test
    require_writable_dir(args.output_dir, '--output_dir')      # before the evaluation, not after it
    if args.preds_file:
        evaluator = build_evaluator(data, data.valid_set, [], test)
        name = 'preds_file'
        metrics = evaluator.evaluate_file(args.preds_file, args.output_dir, {
            'preds_file': os.path.abspath(args.preds_file), 'test': to_dict(test)})
    else:
        split = load_split(data, data.valid_set, test, need_images=not args.oracle)   # the oracle reads no image
        evaluator = build_evaluator(data, data.valid_set, split.records, test)
        if args.oracle:
            preds, maxvals = oracle(split.records, data, test)
            name = f'oracle_{size_name(data.input_wh)}{oracle_suffix(data, test)}'
            extra = {'oracle': {'image_size': size_name(data.input_wh), 'sigma': data.sigma}}
        else:
            preds, maxvals, name, extra = run_model(args, config, split)
        extra['test'] = to_dict(test)
        codec = codec_for(data, test)
        extra['codec'] = {'encoding': codec.encoding, 'decoder': codec.method, 'blur_kernel': codec.kernel,
                          'flip_shift': codec.flip_shift}
        metrics = evaluator.evaluate(preds, maxvals, args.output_dir, extra)
    print(evaluator.table(metrics, name))
    print(f'Wrote {os.path.join(args.output_dir, evaluator.files[0])} and {", ".join(evaluator.files[1:])}')
    print(evaluator.eval_line(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
