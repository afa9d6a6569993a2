"""Backends for the model folder export.py writes: Paddle Inference (oneDNN on CPU) and ONNX Runtime.

Both map normalised crops [N, 3, H, W] float32 to the last stack's heatmaps [N, K, h, w] float32 (N is
free), and carry the folder's conventions: `conventions` is (ModelConfig, DataConfig, TestConfig) as
lib.inference.conventions reads them from inference.json, `inference_config` the file's raw contents.
"""
import os
from typing import Optional, Tuple

import numpy as np

from lib.inference.conventions import EXPORTED_CONFIG_NAME, conventions_from_config
from lib.utils.device import choose_device, gpu_available, paddle_gpu_hint
from lib.utils.files import read_json
from lib.utils.threads import default_threads
from lib.utils.errors import BadValue, MissingFile, MissingPackage

PADDLE_MODEL_FILES = ('model.json', 'model.pdmodel')   # Paddle 3.x (PIR) writes .json; the old IR .pdmodel
PADDLE_PARAMS_FILE = 'model.pdiparams'
ONNX_FILE = 'model.onnx'
EXPORT_COMMAND = 'python export.py --pretrained_model <run>/best_model/model.pdparams --onnx --output_dir {dir}'


def _expected_files(model_dir: str) -> str:
    return (f'{EXPORTED_CONFIG_NAME} (conventions), {PADDLE_MODEL_FILES[0]} + {PADDLE_PARAMS_FILE} (Paddle '
            f'Inference; {PADDLE_MODEL_FILES[1]} from the old IR) and {ONNX_FILE} (ONNX Runtime, export with --onnx). '
            f'Write them with: {EXPORT_COMMAND.format(dir=model_dir)}')


def read_inference_config(model_dir: str) -> dict:
    """The parsed <model_dir>/inference.json; FileNotFoundError naming the expected files when missing."""
    path = os.path.join(model_dir, EXPORTED_CONFIG_NAME)
    if not os.path.isdir(model_dir):
        raise MissingFile(f'exported model folder not found: {model_dir}. Expected a folder holding '
                          + _expected_files(model_dir))
    if not os.path.isfile(path):
        raise MissingFile(f'{path} not found; an exported model folder holds ' + _expected_files(model_dir))
    values = read_json(path, 'the sections model, data and test', 're-export the model: '
                       + EXPORT_COMMAND.format(dir=model_dir), expect=dict)
    missing = [key for key in ('model', 'data', 'test') if not isinstance(values.get(key), dict)]
    if missing:
        raise BadValue(f'{path} lacks the section(s) {missing}; export.py writes model, data, test, num_joints '
                       'and files. Re-export the model: ' + EXPORT_COMMAND.format(dir=model_dir))
    check_file_names(values.get('files'), path)
    return values


def check_file_names(files, path: str) -> None:
    """The `files` of an inference.json ({kind: file name}) must name files inside its folder: a relative
    name without '..' (an absolute path or an escape would make the folder read files elsewhere)."""
    if files is None:
        return
    if not isinstance(files, dict):
        raise BadValue(f'{path}: "files" is {files!r}; expected a dict of kind -> file name in the folder, '
                       'e.g. {"paddle_params": "model.pdiparams"}. Re-export the model.')
    for kind, name in files.items():
        if name is None and kind == 'onnx':
            continue
        if not isinstance(name, str) or not name or os.path.isabs(name) or ':' in name or \
                '..' in name.replace('\\', '/').split('/'):
            raise BadValue(f'{path}: files.{kind} is {name!r}; expected the name of a file inside '
                           f'{os.path.dirname(path) or "."} (relative, no "..", e.g. "model.pdiparams"). '
                           'inference.json may only name files of its own folder: re-export the model, or '
                           'fix the name.')


def paddle_model_files(model_dir: str, inference_config: dict) -> Tuple[str, str]:
    """(program file, parameters file) of the Paddle inference model in model_dir: those inference.json
    names under `files`, else the first of PADDLE_MODEL_FILES present."""
    files = inference_config.get('files') or {}
    names = [files['paddle_model']] if 'paddle_model' in files else list(PADDLE_MODEL_FILES)
    programs = [os.path.join(model_dir, name) for name in names if os.path.isfile(os.path.join(model_dir, name))]
    params = os.path.join(model_dir, files.get('paddle_params', PADDLE_PARAMS_FILE))
    if not programs or not os.path.isfile(params):
        raise MissingFile(f'no Paddle inference model in {model_dir} (found {sorted(os.listdir(model_dir))}); '
                          'expected ' + _expected_files(model_dir))
    return programs[0], params


def check_images(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """images as a C-contiguous float32 [N, 3, H, W] array; ValueError naming the shape otherwise."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != (3, height, width) or images.shape[0] < 1:
        raise BadValue(f'the exported model takes images [N, 3, H, W] = [N, 3, {height}, {width}] float32; '
                       f'received shape {tuple(images.shape)}. Crop and resize to W x H = {width} x {height} '
                       '(the input_wh of inference.json), channels first, and add the batch axis.')
    return images


class PaddleInferenceBackend:
    """paddle.inference predictor of <model_dir>/model.json (or .pdmodel) + model.pdiparams.

    device: 'cpu' (oneDNN when mkldnn, `threads` math-library threads, default OMP_NUM_THREADS when set, else
    all usable cores: lib/utils/threads.default_threads),
    'gpu' (enable_use_gpu) or 'auto' (gpu when this Paddle build sees a CUDA device). `onednn` tells
    whether the predictor runs with oneDNN.
    """

    def __init__(self, model_dir: str, device: str = 'cpu', mkldnn: bool = True, threads: Optional[int] = None):
        from paddle import inference

        self.inference_config = read_inference_config(model_dir)
        self.conventions = conventions_from_config(self.inference_config,
                                                   source=os.path.join(model_dir, EXPORTED_CONFIG_NAME))
        self.width, self.height = self.conventions.data.input_wh   # traced with this size
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


class OnnxRuntimeBackend:
    """onnxruntime.InferenceSession of <model_dir>/model.onnx.

    device: 'cpu' (CPUExecutionProvider), 'gpu' (CUDAExecutionProvider, then CPU for unsupported ops) or
    'auto' (CUDA when onnxruntime offers it). threads: intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model_dir: str, device: str = 'cpu', threads: Optional[int] = None):
        try:
            import onnxruntime
        except ImportError:
            raise MissingPackage('the onnxruntime backend needs onnxruntime: pip install onnxruntime (CPU) or '
                                 'pip install onnxruntime-gpu (CUDA).') from None
        self.inference_config = read_inference_config(model_dir)
        self.conventions = conventions_from_config(self.inference_config,
                                                   source=os.path.join(model_dir, EXPORTED_CONFIG_NAME))
        self.width, self.height = self.conventions.data.input_wh   # traced with this size
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
