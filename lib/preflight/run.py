"""The whole preflight in order, on the device Paddle is set to, for one resolved training configuration."""
import os
import platform
import sys
from typing import List, Optional, Tuple

import numpy as np
import paddle

from lib.config import TrainConfig
from lib.core.precision import Precision
from lib.preflight import measure, numerics
from lib.preflight.findings import NOT_RUN, Finding

# Flags whose value changes what the kernels compute (lib/models/layers.py, lib/core/optim.py, lib/utils/device.py).
REPORTED_FLAGS = ('FLAGS_use_accuracy_compatible_kernel', 'FLAGS_cudnn_deterministic', 'FLAGS_cudnn_exhaustive_search',
                  'FLAGS_cudnn_batchnorm_spatial_persistent', 'FLAGS_batch_norm_use_miopen',
                  'FLAGS_conv_workspace_size_limit')


def environment(device: str, threads: int) -> dict:
    registry = paddle.base.core.globals()
    env = {'paddle': paddle.__version__, 'paddle_commit': getattr(paddle.version, 'commit', ''),
           'device': device, 'cuda': str(paddle.version.cuda()), 'cudnn': str(paddle.version.cudnn()),
           'python': platform.python_version(), 'numpy': np.__version__, 'platform': platform.platform(),
           'cpu_threads': threads, 'cpu_cores': os.cpu_count(), 'load_average': list(os.getloadavg()),
           'flags': {name: registry[name] for name in REPORTED_FLAGS if registry.is_public(name)}}
    try:
        with open('/proc/cpuinfo') as f:
            env['cpu'] = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        env['cpu'] = platform.processor()
    if device.startswith('gpu'):
        properties = paddle.device.cuda.get_device_properties()
        env.update(gpu=paddle.device.cuda.get_device_name(), gpus=paddle.device.cuda.device_count(),
                   compute_capability='.'.join(map(str, paddle.device.cuda.get_device_capability())),
                   gpu_memory_gib=round(properties.total_memory / 2 ** 30, 2))
    return env


def environment_line(env: dict) -> str:
    where = (f'{env["gpu"]} (compute capability {env["compute_capability"]}, {env["gpu_memory_gib"]} GiB), '
             f'CUDA {env["cuda"]}, cuDNN {env["cudnn"]}' if 'gpu' in env else
             f'{env["cpu"]}, {env["cpu_threads"]} math thread(s)')
    return (f'Paddle {env["paddle"]} on {env["device"]}: {where}; Python {env["python"]}, numpy {env["numpy"]}; '
            f'load {"/".join(f"{v:.2f}" for v in env["load_average"])}')


def measurement_batch(config: TrainConfig, device: str, measure_batch: Optional[int]) -> Tuple[int, str]:
    """The batch of the memory / throughput step: the configured one on a GPU (does the preset fit?); on a CPU,
    where one step of a full preset batch can take minutes, `measure_batch` (default 1), said in the table."""
    if measure_batch:
        size = measure_batch
    else:
        size = config.batch_size if device.startswith('gpu') else 1
    if size == config.batch_size:
        return size, ''
    why = ' (a CPU step at the full batch takes minutes: --full_batch measures it)' if not device.startswith('gpu') \
        else ''
    return size, f' of the configured {config.batch_size}{why}'


def run_preflight(config: TrainConfig, device: str, measure_batch: Optional[int] = None,
                  seconds: float = 3.0, progress=print) -> List[Finding]:
    """Every check and measurement; `progress(text)` is told what runs next (a CPU takes a minute or two)."""
    findings: List[Finding] = []
    progress('optimizer updates against the formulas (rmsprop, adam) ...')
    for name in ('rmsprop', 'adam'):
        findings += numerics.check_optimizer(name, config.lr, config.weight_decay, configured=name == config.optimizer)
    precisions = numerics.supported_precisions(device)
    progress('BatchNorm running variance, skipped steps and loss scaling in each precision ...')
    for mode, reason in precisions:
        label = f'BatchNorm running variance = unbiased ({numerics.PRECISION_NAMES[mode]})'
        findings.append(Finding(label, NOT_RUN, '-', fix=reason) if reason else
                        numerics.check_batchnorm(Precision(mode, config.amp_level)))
    for mode, reason in precisions:
        findings.append(numerics.check_skipped_step(config, mode, reason))
    findings.append(numerics.check_loss_scale(config, dict(precisions)['fp16'], device))
    batch_size, note = measurement_batch(config, device, measure_batch)
    progress(f'training steps of {config.model.label} at batch {batch_size} ...')
    step_findings, step_rate = measure.measure_step(config, batch_size, device, note, seconds)
    findings += step_findings
    findings.append(measure.check_shared_memory(config))
    progress(f'the data pipeline with --workers {config.workers} ...')
    findings += measure.measure_pipeline(config, step_rate, device, seconds)
    return findings


def command_line() -> str:
    return 'python ' + ' '.join(sys.argv)
