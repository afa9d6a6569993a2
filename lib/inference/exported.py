"""Backends for the model folder export.py writes: Paddle Inference (oneDNN on CPU) and ONNX Runtime.

Both map normalised crops [N, 3, H, W] float32 to the last stack's heatmaps [N, K, h, w] float32 (N is
free), at the input size the folder was traced with; `inference_config` is the folder's inference.json
(lib/inference/conventions.read_inference_config), which also gives infer.py its configuration
(weights_config).
"""
import os
from typing import Optional, Tuple

import numpy as np

from lib.config import size_name
from lib.inference.conventions import (EXPORT_COMMAND, ONNX_FILE, PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE,
                                       expected_files, read_inference_config)
from lib.utils.device import choose_device, gpu_available, paddle_gpu_hint
from lib.utils.threads import default_threads
from lib.utils.errors import BadValue, MissingFile, MissingPackage


def traced_size(inference_config: dict) -> Tuple[int, int]:
    """(width, height) the exported program takes: data.input_wh of its inference.json."""
    width, height = inference_config['data']['input_wh']
    return int(width), int(height)


def require_traced_network(config, inference_config: dict, model_dir: str) -> None:
    """An exported program has its network and input size fixed: refuse a configuration (flags, --set,
    --config over the folder's inference.json) that asks for another one."""
    saved_model, wanted = inference_config['model'], config.model
    keys = [k for k in ('name', 'num_stacks', 'num_features', 'num_joints') if k in saved_model
            and saved_model[k] != getattr(wanted, k)]
    changes = [f'model.{k}={getattr(wanted, k)!r} (from {config.source_of("model." + k)}) where the export has '
               f'{saved_model[k]!r}' for k in keys]
    if tuple(config.data.input_wh) != traced_size(inference_config):
        changes.append(f'an input of {size_name(config.data.input_wh)} (from {config.source_of("data.input_wh")}) '
                       f'where the export takes {size_name(traced_size(inference_config))}')
    if changes:
        raise BadValue(f'{model_dir} holds an exported program, whose network and input size are fixed; the '
                       f'configuration asks for {"; ".join(changes)}. Drop those settings, or export the model '
                       'again with them: python export.py --pretrained_model <weights> --image_size HEIGHTxWIDTH ...')


def paddle_model_files(model_dir: str, inference_config: dict) -> Tuple[str, str]:
    """(program file, parameters file) of the Paddle inference model in model_dir: those inference.json
    names under `files`, else the first of PADDLE_MODEL_FILES present."""
    files = inference_config.get('files') or {}
    names = [files['paddle_model']] if 'paddle_model' in files else list(PADDLE_MODEL_FILES)
    programs = [os.path.join(model_dir, name) for name in names if os.path.isfile(os.path.join(model_dir, name))]
    params = os.path.join(model_dir, files.get('paddle_params', PADDLE_PARAMS_FILE))
    if not programs or not os.path.isfile(params):
        raise MissingFile(f'no Paddle inference model in {model_dir} (found {sorted(os.listdir(model_dir))}); '
                          'expected ' + expected_files(model_dir))
    return programs[0], params


def check_images(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """images as a C-contiguous float32 [N, 3, H, W] array; ValueError naming the shape otherwise."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != (3, height, width) or images.shape[0] < 1:
        raise BadValue(f'the exported model takes images [N, 3, H, W] = [N, 3, {height}, {width}] float32; '
                       f'received shape {tuple(images.shape)}. Crop and resize to {height}x{width} (the input '
                       'size of inference.json), channels first, and add the batch axis.')
    return images


class ExportedBackend:
    """What both backends of an exported folder share: made from the resolved configuration, which may not ask
    for another network or input size than the folder was traced with (require_traced_network)."""

    @classmethod
    def from_config(cls, model_dir: str, config, threads: Optional[int] = None, saved=None):
        """`saved`: weights_config(model_dir), whose parsed inference.json is used instead of a second read."""
        backend = cls(model_dir, config.device, threads=threads, inference_config=getattr(saved, 'inference_config', None))
        require_traced_network(config, backend.inference_config, model_dir)
        return backend


class PaddleInferenceBackend(ExportedBackend):
    """paddle.inference predictor of <model_dir>/model.json (or .pdmodel) + model.pdiparams.

    device: 'cpu' (oneDNN when mkldnn, `threads` math-library threads, default OMP_NUM_THREADS when set, else
    all usable cores: lib/utils/threads.default_threads),
    'gpu' (enable_use_gpu) or 'auto' (gpu when this Paddle build sees a CUDA device). `onednn` tells
    whether the predictor runs with oneDNN.
    """

    def __init__(self, model_dir: str, device: str = 'cpu', mkldnn: bool = True, threads: Optional[int] = None,
                 inference_config: Optional[dict] = None):
        from paddle import inference

        self.inference_config = inference_config or read_inference_config(model_dir)
        self.width, self.height = traced_size(self.inference_config)
        program, params = paddle_model_files(model_dir, self.inference_config)
        usable = device in ('auto', 'gpu') and gpu_available()
        self.device = choose_device(device, usable, paddle_gpu_hint() if device == 'gpu' and not usable else '')
        config = inference.Config(program, params)
        if self.device == 'gpu':
            config.enable_use_gpu(256, 0)   # initial memory pool (MB), device 0
        else:
            config.disable_gpu()
            # oneDNN kernels and their conv + BN / activation fusions. Paddle 3.3's Config starts with
            # oneDNN on, so False has to switch it off explicitly.
            if mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
            config.set_cpu_math_library_num_threads(threads or default_threads())
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.onednn = self.device == 'cpu' and config.mkldnn_enabled()
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] float32 of the last stack."""
        images = check_images(images, self.height, self.width)
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        return self.output.copy_to_cpu().astype(np.float32, copy=False)


class OnnxRuntimeBackend(ExportedBackend):
    """onnxruntime.InferenceSession of <model_dir>/model.onnx.

    device: 'cpu' (CPUExecutionProvider), 'gpu' (CUDAExecutionProvider, then CPU for unsupported ops) or
    'auto' (CUDA when onnxruntime offers it). threads: intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model_dir: str, device: str = 'cpu', threads: Optional[int] = None,
                 inference_config: Optional[dict] = None):
        try:
            import onnxruntime
        except ImportError:
            raise MissingPackage('the onnxruntime backend needs onnxruntime: pip install onnxruntime (CPU) or '
                                 'pip install onnxruntime-gpu (CUDA).') from None
        self.inference_config = inference_config or read_inference_config(model_dir)
        self.width, self.height = traced_size(self.inference_config)
        files = self.inference_config.get('files')
        name = files.get('onnx') if files is not None else ONNX_FILE
        if name is None:
            raise MissingFile(f'{model_dir} holds no ONNX model: it was exported without --onnx (its '
                              f'inference.json lists {sorted(files.values())}). Re-export with: '
                              + EXPORT_COMMAND.format(dir=model_dir))
        path = os.path.join(model_dir, name)
        if not os.path.isfile(path):
            raise MissingFile(f'{path} not found, though inference.json lists it (the folder holds '
                              f'{sorted(os.listdir(model_dir))}). Copy the whole folder export.py wrote, '
                              'or re-export with: ' + EXPORT_COMMAND.format(dir=model_dir))
        available = onnxruntime.get_available_providers()
        self.device = choose_device(device, 'CUDAExecutionProvider' in available,
                                    f'onnxruntime offers only {available}. Install onnxruntime-gpu '
                                    '(pip install onnxruntime-gpu) matching your CUDA')
        use_cuda = self.device == 'gpu'
        providers = (['CUDAExecutionProvider'] if use_cuda else []) + ['CPUExecutionProvider']
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3   # errors only: paddle2onnx graphs trigger "removing unused initializer" warnings
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(path, sess_options=options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] float32 of the last stack."""
        images = check_images(images, self.height, self.width)
        return self.session.run(None, {self.input_name: images})[0].astype(np.float32, copy=False)
