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
from lib.utils.errors import BadValue, add_debug_argument, run_cli  # noqa: E402
from lib.utils.threads import add_threads_argument, set_mkl_cpu_type, use_cpu_threads  # first: before Paddle
from lib.cli import add_config_arguments  # noqa: E402
from lib.config import (DATASETS, DECODERS, ModelConfig, TestConfig, dump_yaml, find_run_config, image_size_arg,
                        preset_names, resolve_config, size_name, to_dict, weight_conventions)
from lib.core.evaluators import build_evaluator, oracle
from lib.datasets.codec import codec_for
from lib.datasets.records import SplitRecords, layout_of, load_split
from lib.inference.conventions import saved_config_for
from lib.utils.files import require_writable_dir


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', choices=DATASETS,
                   help="mpii or coco (default: the dataset of the run's config.json, else mpii)")
    p.add_argument('--dataset_root', help='MPII in the HRNet layout (default data/mpii), or COCO with annotations/ '
                   'and images/<set>/ or <set>/ (default data/coco)')
    p.add_argument('--valid_set', help='annotation file to evaluate (default valid; COCO val2017)')
    p.add_argument('--image_size', type=image_size_arg, default=None,
                   help='input size: a side (256) or HEIGHTxWIDTH (256x192) (default: from the run\'s config.json, '
                   'else the preset: 256, COCO 256x192)')
    p.add_argument('--pretrained_model', help='.pdparams written by train.py (best_model/model.pdparams)')
    p.add_argument('--model', default=None, choices=preset_names(),
                   help='architecture (default: from config.json beside the weights, else hourglass)')
    p.add_argument('--num_stacks', type=int, default=None, help='hourglass stacks (default: from config.json beside the weights, else 8)')
    p.add_argument('--num_features', type=int, default=None, help='default: from config.json, else 256')
    p.add_argument('--no_flip_test', action='store_true', help='turn the flip test off')
    p.add_argument('--no_shift_heatmap', action='store_true', help='flip test without the one-column shift')
    p.add_argument('--no_post_process', action='store_true', help='decode the plain argmax, without the sub-pixel '
                   'refinement (quarter-pixel, DARK or DARK-UDP)')
    p.add_argument('--decode', choices=DECODERS, help="heatmap decoder: quarter (HRNet's quarter-pixel shift, the "
                   "paper's) or dark (DARK's Taylor step) (default: the run's config.json, else quarter); a --udp "
                   'model always decodes with DARK-UDP')
    p.add_argument('--udp', action='store_true', help="UDP's crop and decoding (default: the run's config.json, "
                   'else off); with --oracle also its targets')
    p.add_argument('--unbiased_encoding', action='store_true', help="--oracle only: DARK's unbiased targets (the "
                   'Gaussian at the exact sub-pixel joint position) instead of HRNet\'s rounded ones')
    p.add_argument('--sigma', type=float, default=None, help='target sigma for --oracle (default: the preset\'s, 2; '
                   'COCO 3 at 384 px high)')
    p.add_argument('--batch_size', type=int, default=32, help='images per forward pass (default 32)')
    p.add_argument('--workers', type=int, default=2, help='data loading processes (default 2; 0 = in this process)')
    p.add_argument('--device', choices=('auto', 'cpu', 'gpu'), default='auto',
                   help='auto: the GPU when this Paddle build sees one, else the CPU (default auto)')
    add_threads_argument(p)
    p.add_argument('--output_dir', default='output/val', help='where results.json and pred.mat (MPII) or '
                   'keypoints_<set>_results.json (COCO) go')
    p.add_argument('--preds_file', help='evaluate saved predictions instead of running a model: MPII pred.mat, '
                   'COCO results JSON (as written by val.py or HRNet; scored as it is, no rescoring or NMS)')
    p.add_argument('--oracle', action='store_true',
                   help='evaluate the ground truth pushed through crop -> target -> decode (no model, no images)')
    coco = p.add_argument_group('COCO boxes and post-processing (HRNet TEST section)')
    coco.add_argument('--use_gt_bbox', action='store_true', help='ground-truth person boxes (the default when no '
                      '--det_file is given)')
    coco.add_argument('--det_file', help='person detections, a JSON list of {image_id, category_id, bbox, score}, '
                      'e.g. COCO_val2017_detections_AP_H_56_person.json')
    coco.add_argument('--image_thre', type=float, help='keep detections with score >= this (default: the '
                      "run's, else the preset's: 0.0)")
    coco.add_argument('--in_vis_thre', type=float, help='rescoring: box score x mean of the joint scores above '
                      "this (default: the run's, else the preset's: 0.2)")
    coco.add_argument('--oks_thre', type=float, help="OKS-NMS threshold per image (default: the run's, else the "
                      "preset's: 0.9)")
    add_config_arguments(p)
    add_debug_argument(p)
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
    if args.workers < 0:
        p.error(f'--workers must be 0 (load in the main process) or more; received {args.workers}')
    return args


def conventions(args):
    """(ModelConfig, DataConfig, TestConfig) by lib/config.resolve_config: the preset of (dataset, model, input
    size) <- the conventions in the config.json beside the weights <- --config <- flags <- --set."""
    saved = saved_config_for(args.pretrained_model) if args.pretrained_model else {}
    flags = {'data.dataset': args.dataset, 'data.dataset_root': args.dataset_root, 'data.valid_set': args.valid_set,
             'data.input_wh': args.image_size, 'data.sigma': args.sigma, 'model.name': args.model,
             'model.num_stacks': args.num_stacks, 'model.num_features': args.num_features,
             'test.flip_test': False if args.no_flip_test else None,
             'test.shift_heatmap': False if args.no_shift_heatmap else None,
             'test.post_process': False if args.no_post_process else None, 'test.batch_size': args.batch_size,
             'test.decode': args.decode, 'data.udp': True if args.udp else None,
             'data.unbiased_encoding': True if args.unbiased_encoding else None,
             'test.use_gt_bbox': not args.det_file, 'test.det_file': args.det_file or '',
             'test.image_thre': args.image_thre, 'test.in_vis_thre': args.in_vis_thre, 'test.oks_thre': args.oks_thre}
    config = resolve_config(flags, run_config=weight_conventions(saved), config_file=args.config, sets=args.set,
                            run_source=find_run_config(args.pretrained_model) if saved else '')
    if args.pretrained_model:
        from lib.models import check_input_size, model_options     # imports Paddle: only with a model
        check_input_size(config.model.name, config.data.input_wh)
        model_options(config.model, saved_option_sources(args, saved, config.model))
    dataset = config.data.dataset
    if args.det_file and dataset != 'coco':
        raise BadValue(f'--det_file applies to COCO only, but the dataset is {dataset}; add --dataset coco.')
    layout = layout_of(dataset)
    if config.model.num_joints != layout.num_joints:
        raise BadValue(f'the model predicts {config.model.num_joints} joints, but {dataset} has '
                       f'{layout.num_joints}; evaluate these weights on the dataset they were trained on (--dataset).')
    return config.model, config.data, config.test


def saved_option_sources(args, saved: dict, model_cfg: ModelConfig) -> dict:
    """{option: what to do} for the hourglass options that came from the config.json beside the weights and
    not from the command line, so that an error about them does not say "Remove --num_stacks"."""
    written = saved.get('model', {})
    sources = {}
    for key in ('num_stacks', 'num_features'):
        named = any(item.split('=')[0].strip() == f'model.{key}' for item in args.set)
        if getattr(args, key) is None and not named and not args.config and written.get(key) == getattr(model_cfg, key):
            sources[key] = (f'{key}={written[key]} was not given on the command line: it comes from '
                            f'{find_run_config(args.pretrained_model)} beside the weights, which were trained as '
                            f'{written.get("name", "?")}. Drop --model {model_cfg.name} to evaluate them as that, '
                            f'or give weights of a {model_cfg.name}.')
    return sources


def input_label(dataset: str, input_wh) -> str:
    """256 for a square MPII input (as before COCO), else HRNet's HxW, e.g. 256x192."""
    return str(input_wh[0]) if dataset == 'mpii' and input_wh[0] == input_wh[1] else size_name(input_wh)


def oracle_suffix(data, test: TestConfig) -> str:
    """'' for HRNet's targets and decoder (the oracle as before DARK and UDP), else e.g. '_unbiased_dark', '_udp'."""
    codec = codec_for(data, test)
    if codec.udp:
        return '_udp'
    if codec.encoding == 'hrnet' and codec.decoder == 'quarter':
        return ''
    return f'_{codec.encoding}_{codec.decoder}'


def run_model(args, model_cfg: ModelConfig, data, test: TestConfig, split: SplitRecords):
    """(preds [N, K, 2] image pixels, maxvals [N, K, 1], name, extra) of the flip-tested model on `split`."""
    from lib.core.validate import predict_split   # imports Paddle: --preds_file and --oracle start fast without
    from lib.utils.logger import setup_logger
    use_cpu_threads(args.threads)
    preds, maxvals = predict_split(args.pretrained_model, model_cfg, data, test, split, args.device, args.batch_size,
                                   args.workers, logger=setup_logger(name='val', stream=sys.stderr))
    name = f'{model_cfg.label}_{input_label(data.dataset, data.input_wh)}'
    return preds, maxvals, name, {'model': to_dict(model_cfg), 'data': to_dict(data)}


def main(argv=None) -> int:
    args = parse_args(argv)
    set_mkl_cpu_type()      # before Paddle is imported
    model_cfg, data, test = conventions(args)
    if args.print_config:
        print(dump_yaml({'model': to_dict(model_cfg), 'data': to_dict(data), 'test': to_dict(test)}), end='')
        return 0
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
            size = data.input_wh[0] if data.input_wh[0] == data.input_wh[1] else size_name(data.input_wh)
            name = f'oracle_{input_label(data.dataset, data.input_wh)}{oracle_suffix(data, test)}'
            extra = {'oracle': {'image_size': size, 'sigma': data.sigma}}
        else:
            preds, maxvals, name, extra = run_model(args, model_cfg, data, test, split)
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
