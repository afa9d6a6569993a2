"""Device selection that works on CPU-only and GPU builds of Paddle 2.6 and 3.x; choose_device is the one
check of a --device value, also used by the exported-model backends (Paddle is imported only when asked)."""
from lib.utils.errors import BadValue, Unavailable

DEVICES = ('auto', 'cpu', 'gpu')


def choose_device(choice: str, gpu_usable: bool, install_hint: str) -> str:
    """'auto' -> 'gpu' when gpu_usable, else 'cpu'; 'gpu' without a usable GPU is an error that ends with
    install_hint (what to install for one)."""
    if choice not in DEVICES:
        raise BadValue(f"--device must be 'auto', 'cpu' or 'gpu'; received {choice!r}.")
    if choice == 'gpu' and not gpu_usable:
        raise Unavailable(f'--device gpu was asked for, but {install_hint}, or use --device cpu.')
    return 'gpu' if choice == 'gpu' or (choice == 'auto' and gpu_usable) else 'cpu'


def gpu_available() -> bool:
    import paddle
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def paddle_gpu_hint() -> str:
    import paddle
    return (f'this Paddle build sees no CUDA device (compiled with CUDA: {paddle.device.is_compiled_with_cuda()}). '
            'Install paddlepaddle-gpu matching your CUDA version')


def select_device(choice: str) -> str:
    """'auto' -> 'gpu' when a CUDA device is usable, else 'cpu'. Sets Paddle's device and returns it."""
    import paddle
    usable = gpu_available() if choice in DEVICES else False
    device = choose_device(choice, usable, paddle_gpu_hint() if choice == 'gpu' and not usable else '')
    paddle.set_device(device)
    return device
