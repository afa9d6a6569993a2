"""Mixed precision: paddle.amp.auto_cast for fp16 / bf16 (O1, or O2 with float32 master weights), dynamic loss
scaling for fp16, and the fused finiteness check that lets a step be skipped instead of spoiling weights."""
import contextlib
import logging
from typing import Optional, Tuple

import paddle
from paddle import _legacy_C_ops
from lib.utils.errors import BadValue, Unavailable

MODES = ('off', 'fp16', 'bf16')
LEVELS = ('O1', 'O2')


# Compute capability Paddle's autocast needs per low precision on an NVIDIA GPU (python/paddle/amp/auto_cast.py,
# _is_gpu_float16_supported / _is_gpu_bfloat16_supported, 2.6 and 3.x): below it amp_guard only warns and runs
# float32, and amp_decorate returns the model unchanged. bf16 also needs CUDA >= 11.
MIN_CAPABILITY = {'fp16': (7, 0), 'bf16': (8, 0)}


def check_device_supports(mode: str, device: Optional[str] = None) -> None:
    """Unavailable when `mode` would silently run in float32 on this GPU (what the log and config.json record
    must be what runs); on a CPU Paddle's autocast does nothing at all, which Precision logs."""
    device = device or paddle.get_device()
    if mode not in MIN_CAPABILITY or not device.startswith('gpu') or paddle.is_compiled_with_rocm():
        return
    major, minor = paddle.device.cuda.get_device_capability()
    cuda = str(paddle.version.cuda())
    cuda_major = int(cuda.split('.')[0]) if cuda[:1].isdigit() else 0
    need = MIN_CAPABILITY[mode]
    if (major, minor) < need or (mode == 'bf16' and cuda_major < 11):
        other = ("--amp fp16 (compute capability 7.0 or higher, e.g. V100, T4) or --amp off" if mode == 'bf16'
                 else '--amp off')
        raise Unavailable(f'--amp {mode} needs an NVIDIA GPU of compute capability {need[0]}.{need[1]} or higher'
                          f'{" and CUDA 11 or newer" if mode == "bf16" else ""}; this one ({device}) has '
                          f'{major}.{minor}{f" with CUDA {cuda}" if mode == "bf16" else ""}, where Paddle would train '
                          f'in float32 while the run says {mode}. Fix: use {other}.')


class Precision:
    """What a training step needs to know about its number format."""

    def __init__(self, mode: str = 'off', level: str = 'O1'):
        if mode not in MODES or level not in LEVELS:
            raise BadValue(f'--amp must be one of {MODES} and --amp_level one of {LEVELS}; '
                           f'received {mode!r} and {level!r}.')
        check_device_supports(mode)
        if mode != 'off' and paddle.get_device() == 'cpu':
            logging.getLogger('pose').info(
                '--amp %s on a CPU: Paddle runs autocast only on GPU, XPU and custom devices, so this run computes in '
                'float32 (the mixed-precision code path runs, its arithmetic is float32).', mode)
        self.mode, self.level = mode, level
        self.dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}.get(mode, 'float32')
        # fp16 needs loss scaling to keep small gradients representable; bf16 has float32's range.
        self.scaler = LossScaler() if mode == 'fp16' else None

    @property
    def enabled(self) -> bool:
        return self.mode != 'off'

    def prepare(self, model: paddle.nn.Layer, optimizer) -> Tuple[paddle.nn.Layer, object]:
        """O2 casts the model itself to the low precision, keeping float32 master weights in the
        optimizer; its state dict is still saved in float32."""
        if self.enabled and self.level == 'O2':
            return paddle.amp.decorate(models=model, optimizers=optimizer, level='O2', dtype=self.dtype,
                                       save_dtype='float32')
        return model, optimizer

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, dtype=self.dtype, level=self.level)

    def eval_autocast(self):
        """Validation runs in float32 unless the weights themselves are low precision (O2)."""
        return self.autocast() if self.enabled and self.level == 'O2' else contextlib.nullcontext()

    def backward(self, loss: paddle.Tensor) -> None:
        (loss * self.scaler.scale if self.scaler is not None else loss).backward()

    def unscale_and_check(self, parameters) -> paddle.Tensor:
        """Divide the gradients by the loss scale (fp16) and return bool [1], True when any is inf or NaN; one
        fused kernel per gradient dtype and no host synchronisation (see gradients_nonfinite)."""
        return gradients_nonfinite(parameters, self.scaler.scale if self.scaler is not None else 1.0)

    def finish_step(self, optimizer, apply: bool) -> None:
        """Apply the update when `apply`, a decision all ranks share (train_step reads it once per step); the loss
        scale follows the same decision, so it stays equal on every rank."""
        if apply:
            optimizer.step()
        if self.scaler is not None:
            self.scaler.update(overflow=not apply)


class LossScaler:
    """Dynamic loss scaling for fp16 with Paddle's GradScaler defaults: start at 2^15, halve on a step with an inf or
    NaN, double after 1000 steps in a row without one.

    Paddle's GradScaler is not used: it decides from private state (_cache_found_inf, spelt _cache_founf_inf in
    Paddle 2.6), decides per rank, reads the device once more in update(), and in Paddle 3.3 with NumPy 2.4 its
    first scale decrease ends in a TypeError (float() of a [1] tensor). Here the unscaling is the finiteness check
    (the same fused kernel the GradScaler uses) and the scale is a Python float.
    """

    def __init__(self, scale: float = 2.0 ** 15, growth_interval: int = 1000, factor: float = 2.0):
        self.scale, self.growth_interval, self.factor = scale, growth_interval, factor
        self.good_steps = 0

    def update(self, overflow: bool) -> None:
        if overflow:
            self.scale, self.good_steps = max(self.scale / self.factor, 1.0), 0
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale, self.good_steps = self.scale * self.factor, 0


def _scale_tensor(value: float, dtype: str, _cache: dict = {}) -> paddle.Tensor:  # noqa: B006 - a small cache
    key = (value, dtype, str(paddle.get_device()))
    if key not in _cache:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = paddle.full([1], value, dtype=dtype)
    return _cache[key]


def gradients_nonfinite(parameters, scale: float = 1.0) -> paddle.Tensor:
    """bool [1]: True when any gradient holds an inf or a NaN, after dividing every gradient by `scale` in place (the
    loss scale; 1 leaves them as they are). No host synchronisation: the answer stays on the device until the
    step's one read. One fused kernel per gradient dtype (check_finite_and_unscale, the GradScaler's own) instead
    of two reductions per parameter."""
    groups = {}
    for p in parameters:
        if not p.stop_gradient and p.grad is not None:
            groups.setdefault(p.grad.dtype, []).append(p.grad)
    found = paddle.zeros([1], dtype='bool')
    for grads in groups.values():
        flag = paddle.zeros([1], dtype='bool')
        # The kernel's scale is float32 for float32 / float16 / bfloat16 gradients, float64 for float64 ones.
        scale_tensor = _scale_tensor(scale, 'float64' if grads[0].dtype == paddle.float64 else 'float32')
        _legacy_C_ops.check_finite_and_unscale(grads, scale_tensor, grads, flag)
        found = paddle.logical_or(found, flag)
    return found
