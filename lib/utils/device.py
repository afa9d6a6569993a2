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


# What makes a GPU run repeatable in Paddle (2.6 and 3.x): FLAGS_cudnn_deterministic makes every cuDNN convolution
# (forward, backward data, backward filter) use a fixed deterministic algorithm instead of the heuristic or autotuned
# choice (phi/kernels/gpudnn/conv_cudnn_v7.h, SearchAlgorithm::Find -> FindAlgoDeterministic) and cuDNN pooling its
# deterministic mode; the conv kernels refuse it together with FLAGS_cudnn_exhaustive_search ("Can't set
# exhaustive_search True and FLAGS_cudnn_deterministic True at same time"), so that one is cleared; and
# FLAGS_cudnn_batchnorm_spatial_persistent (off by default) may use atomic reductions (Paddle's flag docs), so it
# stays off. FLAGS_embedding_deterministic concerns embeddings, which these models do not have.
DETERMINISTIC_FLAGS = {'FLAGS_cudnn_deterministic': True, 'FLAGS_cudnn_exhaustive_search': False,
                       'FLAGS_cudnn_batchnorm_spatial_persistent': False}


def use_deterministic_kernels(enabled: bool) -> dict:
    """Set DETERMINISTIC_FLAGS (before the model is built) when `enabled`; returns the flags set. A CPU-only Paddle
    has none of them (no cuDNN): nothing to set, and the log says so."""
    if not enabled:
        return {}
    import logging
    import paddle
    registry = paddle.base.core.globals()
    flags = {name: value for name, value in DETERMINISTIC_FLAGS.items() if registry.is_public(name)}
    if flags:
        paddle.set_flags(flags)
    logging.getLogger('pose').info(
        '--deterministic: %s', ', '.join(f'{k}={v}' for k, v in flags.items()) if flags else
        'this Paddle build has no cuDNN flags to set (CPU); its kernels here need none')
    return flags
