"""Device selection that works on CPU-only and GPU builds of Paddle 2.6 and 3.x."""
import paddle


def gpu_available() -> bool:
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def select_device(choice: str) -> str:
    """'auto' -> 'gpu' when a CUDA device is usable, else 'cpu'. Returns the device set."""
    if choice not in ('auto', 'cpu', 'gpu'):
        raise ValueError(f"--device must be 'auto', 'cpu' or 'gpu'; received {choice!r}.")
    if choice == 'gpu' and not gpu_available():
        raise RuntimeError('--device gpu was asked for, but this Paddle build sees no CUDA device '
                           f'(compiled with CUDA: {paddle.device.is_compiled_with_cuda()}). Install '
                           'paddlepaddle-gpu matching your CUDA version, or use --device cpu.')
    device = 'gpu' if choice == 'gpu' or (choice == 'auto' and gpu_available()) else 'cpu'
    paddle.set_device(device)
    return device
