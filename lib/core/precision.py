"""Mixed precision: paddle.amp.auto_cast for fp16 / bf16 (O1, or O2 with float32 master weights), a
GradScaler for fp16, and the finiteness checks that let a step be skipped instead of spoiling weights."""
import contextlib
from typing import Tuple

import paddle

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

    def step(self, optimizer) -> bool:
        """Apply the update; False when the GradScaler found non-finite gradients and skipped it."""
        if self.scaler is None:
            optimizer.step()
            return True
        self.scaler.step(optimizer)
        skipped = bool(getattr(self.scaler, '_cache_found_inf', False))
        self.scaler.update()
        return not skipped


def gradients_finite(parameters) -> bool:
    """True when every gradient is finite (one host sync for the whole model)."""
    checks = [paddle.isfinite(p.grad).all() for p in parameters if not p.stop_gradient and p.grad is not None]
    return bool(paddle.stack(checks).all()) if checks else True
