"""Mixed precision: paddle.amp.auto_cast for fp16 / bf16 (O1, or O2 with float32 master weights), a
GradScaler for fp16, and the fused finiteness check that lets a step be skipped instead of spoiling weights."""
import contextlib
from typing import Tuple

import paddle
from paddle import _legacy_C_ops

MODES = ('off', 'fp16', 'bf16')
LEVELS = ('O1', 'O2')


class Precision:
    """What a training step needs to know about its number format."""

    def __init__(self, mode: str = 'off', level: str = 'O1'):
        if mode not in MODES or level not in LEVELS:
            raise ValueError(f'--amp must be one of {MODES} and --amp_level one of {LEVELS}; '
                             f'received {mode!r} and {level!r}.')
        self.mode, self.level = mode, level
        self.dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}.get(mode, 'float32')
        # fp16 needs loss scaling to keep small gradients representable; bf16 has float32's range.
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if mode == 'fp16' else None

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
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    @property
    def scaling(self) -> bool:
        """True when a GradScaler scales the loss (fp16 on a GPU; Paddle disables it on a CPU)."""
        return self.scaler is not None and self.scaler.is_enable()

    def finish_step(self, optimizer, apply: bool, gradients_finite_here: bool) -> None:
        """Apply the update when `apply` (decided on the host from one read per step, see train_step).

        The decision never comes from the GradScaler's private state (Paddle 3 calls it _cache_found_inf, Paddle
        2.6 _cache_founf_inf). A GradScaler is still stepped after an overflow of its own, because that is what
        lowers its scale; it then skips the update itself, as its check sees the same gradients as ours.
        """
        if not self.scaling:
            if apply:
                optimizer.step()
            return
        if apply or not gradients_finite_here:
            self.scaler.step(optimizer)
            self.scaler.update()


def _one(place_key: str, _cache: dict = {}) -> paddle.Tensor:  # noqa: B006 - one constant per device
    if place_key not in _cache:
        _cache[place_key] = paddle.ones([1], dtype='float32')
    return _cache[place_key]


def gradients_nonfinite(parameters) -> paddle.Tensor:
    """bool [1]: True when any gradient holds an inf or a NaN. No host synchronisation: the answer stays on the
    device until the step's one read. One fused check per gradient dtype, the GradScaler's own kernel
    (check_finite_and_unscale, here with scale 1), instead of two reductions per parameter."""
    groups = {}
    for p in parameters:
        if not p.stop_gradient and p.grad is not None:
            groups.setdefault(p.grad.dtype, []).append(p.grad)
    found = paddle.zeros([1], dtype='bool')
    for grads in groups.values():
        flag = paddle.zeros([1], dtype='bool')
        _legacy_C_ops.check_finite_and_unscale(grads, _one(str(paddle.get_device())), grads, flag)
        found = paddle.logical_or(found, flag)
    return found
