"""Inference latency per backend: Paddle dygraph, Paddle Inference (oneDNN) and ONNX Runtime, on the model
export.py writes (last stack only), in ms per batch and per person. A figure, not a test.

    python benchmarks/infer_latency.py                   # hourglass 2 and 8 stacks, pose_resnet_50; 256; batch 1, 8
    python benchmarks/infer_latency.py --models pose_resnet_50 --batch_sizes 1 32 --iters 10 --threads 1
    python benchmarks/infer_latency.py --backends paddle-inference paddle-inference-no-onednn

Untrained weights (latency does not depend on them). Each model is exported once into a temporary folder;
every backend then runs the same random batch, `--warmup` untimed calls and `--iters` timed ones per row.
All backends use `--threads` CPU threads (default: the usable cores); CPU only. On AMD CPUs MKL_DEBUG_CPU_TYPE=5 is
set as infer.py sets it (lib/utils/threads.py), unless it is set already.
"""
import argparse
import importlib.util
import os
import shlex
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List

# Run as `python benchmarks/infer_latency.py`: Python puts benchmarks/, not the repo root, on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds
OMP_BEFORE_PADDLE = os.environ.get('OMP_NUM_THREADS')   # `import paddle` sets it to 1 when unset
from lib.utils.threads import set_mkl_cpu_type  # noqa: E402
set_mkl_cpu_type()     # as infer.py does, before Paddle loads MKL (AMD CPUs: its AVX2 path)

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddle.base import core  # noqa: E402

from benchmarks.machine import cpu_name, load_text  # noqa: E402
from lib.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from lib.inference.export import export_model  # noqa: E402
from lib.inference.exported import OnnxRuntimeBackend, PaddleInferenceBackend  # noqa: E402
from lib.models import MODELS, build_model_from, check_input_size  # noqa: E402

BACKENDS = ('dygraph', 'paddle-inference', 'onnxruntime', 'paddle-inference-no-onednn')
HAVE_ONNX = all(importlib.util.find_spec(name) for name in ('paddle2onnx', 'onnxruntime'))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', choices=sorted(MODELS), default=['hourglass', 'pose_resnet_50'])
    p.add_argument('--num_stacks', type=int, nargs='+', default=[2, 8], help="'hourglass' only: one model per value")
    p.add_argument('--num_features', type=int, default=256, help="'hourglass' only (default 256)")
    p.add_argument('--image_size', type=int, default=256, help='square input side (default 256)')
    p.add_argument('--batch_sizes', type=int, nargs='+', default=[1, 8])
    p.add_argument('--backends', nargs='+', choices=BACKENDS, default=list(BACKENDS[:3]))
    p.add_argument('--iters', type=int, default=3, help='timed calls per row (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed calls per row (default 1)')
    p.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)),
                   help='CPU threads of every backend (default: the usable cores)')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or min(args.batch_sizes) < 1 or args.threads < 1:
        p.error(f'--iters, --batch_sizes and --threads must be >= 1 and --warmup >= 0; received {args.iters}, '
                f'{args.batch_sizes}, {args.threads} and {args.warmup}.')
    return args


def model_configs(args: argparse.Namespace) -> List[ModelConfig]:
    configs = []
    for name in args.models:
        check_input_size(name, (args.image_size, args.image_size))
        configs += ([ModelConfig(name, num_stacks=s, num_features=args.num_features) for s in args.num_stacks]
                    if name == 'hourglass' else [ModelConfig(name)])
    return configs


def make_backends(model, model_cfg: ModelConfig, args: argparse.Namespace, folder: str) -> Dict[str, Callable]:
    """{backend name: images [N, 3, H, W] -> heatmaps [N, K, h, w]} for the asked backends that are installed."""
    size = args.image_size
    config = TrainConfig(model=model_cfg, data=DataConfig('', input_wh=(size, size), heatmap_wh=(size // 4, size // 4)))
    onnx = HAVE_ONNX and 'onnxruntime' in args.backends
    if set(args.backends) - {'dygraph'}:
        start = time.perf_counter()
        export_model(model, config, folder, onnx=onnx)
        print(f'  exported {model_cfg.label} to {folder} in {time.perf_counter() - start:.1f} s', flush=True)

    @paddle.no_grad()
    def dygraph(images):
        return model(paddle.to_tensor(images))[-1].numpy()

    makers = {'dygraph': lambda: dygraph,
              'paddle-inference': lambda: PaddleInferenceBackend(folder, 'cpu', mkldnn=True, threads=args.threads),
              'paddle-inference-no-onednn': lambda: PaddleInferenceBackend(folder, 'cpu', mkldnn=False,
                                                                           threads=args.threads),
              'onnxruntime': lambda: OnnxRuntimeBackend(folder, 'cpu', threads=args.threads)}
    backends = {}
    for name in args.backends:
        if name == 'onnxruntime' and not HAVE_ONNX:
            print('  onnxruntime skipped: pip install paddle2onnx onnxruntime', flush=True)
            continue
        start = time.perf_counter()
        backends[name] = makers[name]()
        core.set_num_threads(args.threads)   # Paddle Inference sets the process-wide math threads too
        print(f'  {name} ready in {time.perf_counter() - start:.1f} s', flush=True)
    return backends


def time_calls(backend: Callable, images: np.ndarray, warmup: int, iters: int, label: str) -> List[float]:
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        backend(images)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
        print(f'  {label}, call {i + 1}/{warmup + iters}{" (warm-up)" if i < warmup else ""}: '
              f'{elapsed * 1e3:.0f} ms, load {load_text()}', flush=True)
    return times


def main(argv=None) -> None:
    args = parse_args(argv)
    paddle.set_device('cpu')
    core.set_num_threads(args.threads)
    load_start, rows = load_text(), []
    print(f'load {load_start}', flush=True)
    for model_cfg in model_configs(args):
        paddle.seed(args.seed)
        model = build_model_from(model_cfg)
        model.eval()
        with tempfile.TemporaryDirectory(prefix=f'export_{model_cfg.label}_') as folder:
            backends = make_backends(model, model_cfg, args, folder)
            rng = np.random.default_rng(args.seed)
            for batch in args.batch_sizes:
                images = rng.standard_normal((batch, 3, args.image_size, args.image_size), dtype=np.float32)
                dygraph_ms = None
                for name, backend in backends.items():
                    label = f'{model_cfg.label} {name} batch {batch}'
                    ms = np.mean(time_calls(backend, images, args.warmup, args.iters, label)) * 1e3
                    dygraph_ms = ms if name == 'dygraph' else dygraph_ms
                    speedup = f'{dygraph_ms / ms:.2f}x' if dygraph_ms else '-'
                    rows.append(f'| {model_cfg.label} | {args.image_size}x{args.image_size} | {name} | {batch} '
                                f'| {ms:.1f} | {ms / batch:.1f} | {speedup} |')
            del backends

    argv_shown = sys.argv[1:] if argv is None else list(argv)
    print(f'\ncommand: {shlex.join(["python", "benchmarks/infer_latency.py"] + argv_shown)}')
    ort_version = 'not installed'
    if importlib.util.find_spec('onnxruntime'):
        import onnxruntime
        ort_version = onnxruntime.__version__
    print(f'paddle {paddle.__version__}, onnxruntime {ort_version}; CPU: {cpu_name()}; os.cpu_count() '
          f'{os.cpu_count()}, usable {len(os.sched_getaffinity(0))}; threads per backend {args.threads} '
          f'(OMP_NUM_THREADS before import: {OMP_BEFORE_PADDLE or "unset"}; MKL_DEBUG_CPU_TYPE '
          f'{os.environ.get("MKL_DEBUG_CPU_TYPE", "unset")}); load 1/5/15 min at start '
          f'{load_start}, at end {load_text()}')
    print(f'untrained weights, random input; {args.iters} timed call(s) after {args.warmup} warm-up per row; '
          'ms/batch = mean wall time of one call (host arrays in and out); ms/person = ms/batch / batch; '
          'vs dygraph = dygraph ms / this row\'s ms. paddle-inference = oneDNN on.')
    print('\n| model | input HxW | backend | batch | ms/batch | ms/person | vs dygraph |')
    print('|---|---|---|---|---|---|---|')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
