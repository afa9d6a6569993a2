"""export.py and lib/inference/exported.py: every registered model exported, then dygraph vs Paddle Inference
(oneDNN on) vs ONNX Runtime on the same random batches of 2 and 3 (the batch axis is dynamic), the
conventions in inference.json, and clear errors.

Parity criterion: max |backend - dygraph| <= 1e-4 x max |dygraph heatmap| (relative to the largest heatmap
value; the absolute figures are printed, run with -s to see them). The weights are the builders' with random
BatchNorm scales and shifts and BatchNorm statistics taken from a random batch, so every layer carries signal
(the untrained zoo models' std-0.001 convolutions give heatmaps of 1e-15) and conv + BN folding is exercised.
The last BatchNorm of each post-activation residual branch is scaled by 0.2 (torchvision's zero_init_residual
idea): without it a random ResNet-101/152 with calibrated BatchNorm amplifies rounding so much that float32
dygraph itself is 2e-4 / 4e-4 of max |heatmap| away from a float64 run, and no float32 backend can agree to 1e-4.

Sizes: hourglass, hourglass52 and hourglass104 use the tiny options of test_loss_and_models.TINY_KWARGS
(full-size hourglass52/104 take 27 s / 52 s to export and check); the pose_resnets are full size at 64 x 64.
"""
import contextlib
import dataclasses
import functools
import importlib.util
import io
import json
import os
import shutil
import sys

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import export
from lib.config import ModelConfig, preset_config, resolve_config, to_dict
from lib.inference.conventions import WEIGHT_CONVENTIONS, weight_conventions, weights_config
from lib.inference.exported import OnnxRuntimeBackend, PaddleInferenceBackend
from lib.models import MODELS, build_model_from
from lib.models.layers import BasicBlock
from lib.models.pose_resnet import Bottleneck
from tests.test_loss_and_models import TINY_KWARGS



def _onnx_usable() -> str:
    """'' when paddle2onnx and onnxruntime import with this Paddle, else why not (paddle2onnx 2.x refuses Paddle 2.6
    at import: the Paddle 2.6.2 leg of CI runs these parts as skipped, with this reason)."""
    if not all(importlib.util.find_spec(name) for name in ('paddle2onnx', 'onnxruntime')):
        return 'ONNX parts need paddle2onnx and onnxruntime: pip install paddle2onnx onnxruntime'
    try:
        export.import_paddle2onnx()
    except ImportError as error:
        return f'ONNX parts cannot run here: {error}'
    return ''


NO_ONNX = _onnx_usable()
HAVE_ONNX = not NO_ONNX
TOLERANCE = 1e-4   # of max |dygraph heatmap|
MODEL_OPTIONS = ('num_stacks', 'num_features')   # what ModelConfig (and so config.json) can carry
# Input side and builder options per model; options beyond MODEL_OPTIONS are bound into the builder.
CASES = {
    'hourglass': (64, TINY_KWARGS['hourglass']),
    'hourglass52': (128, TINY_KWARGS['hourglass52']),     # INPUT_MULTIPLE is 128 whatever the options
    'hourglass104': (128, TINY_KWARGS['hourglass104']),
    **{name: (64, {}) for name in MODELS if name.startswith('pose_resnet')},
}


# paddle.jit.save writes the program as model.json (PIR) on Paddle 3.x and as model.pdmodel on 2.6.
PROGRAM_FILE = 'model.json' if int(paddle.__version__.split('.')[0]) >= 3 else 'model.pdmodel'


def calibrate(model: nn.Layer, size: int, seed: int = 0) -> nn.Layer:
    """Random BatchNorm scale/shift (x 0.2 at the end of residual branches), then running statistics = those
    of one random batch of 16 (momentum 0 for that pass: Paddle's running = momentum x running + (1 - momentum)
    x batch). Returns the eval-mode model."""
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.sublayers() if isinstance(layer, nn.BatchNorm2D)]
    for norm in norms:
        norm.weight.set_value(rng.uniform(0.5, 1.5, norm.weight.shape).astype(np.float32))
        norm.bias.set_value(rng.normal(0.0, 0.2, norm.bias.shape).astype(np.float32))
        norm._momentum = 0.0
    for block in model.sublayers():
        if isinstance(block, (BasicBlock, Bottleneck)):
            last = block.bn3 if isinstance(block, Bottleneck) else block.bn2
            last.weight.set_value(last.weight * 0.2)
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(rng.standard_normal((16, 3, size, size), dtype=np.float32)))
    for norm in norms:
        norm._momentum = 0.9
    model.eval()
    return model


def make_run(folder, model_cfg: ModelConfig, size: int) -> tuple:
    """(weights path, model): a calibrated model saved as train.py saves a run (config.json beside it)."""
    preset = preset_config(model_cfg.name, 'data/mpii')
    config = dataclasses.replace(preset, model=model_cfg, data=dataclasses.replace(
        preset.data, input_wh=(size, size), heatmap_wh=(size // 4, size // 4)))
    paddle.seed(0)
    model = calibrate(build_model_from(model_cfg), size)
    folder.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(folder / 'model.pdparams'))
    (folder / 'config.json').write_text(json.dumps(to_dict(config)))
    return str(folder / 'model.pdparams'), model


def run_export(argv) -> str:
    """export.main(argv) must succeed; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = export.main(argv)
    assert code == 0, printed.getvalue()
    return printed.getvalue()


@contextlib.contextmanager
def tiny_builder(name: str, options: dict):
    """MODELS[name] with the options config.json cannot carry bound in (restored afterwards)."""
    extra = {key: value for key, value in options.items() if key not in MODEL_OPTIONS}
    with pytest.MonkeyPatch.context() as patch:
        if extra:
            patch.setitem(MODELS, name, functools.partial(MODELS[name], **extra))
        yield ModelConfig(name, **{key: options[key] for key in MODEL_OPTIONS if key in options})


@pytest.fixture(scope='module', params=sorted(MODELS))
def exported(request, tmp_path_factory):
    """(name, weights, dygraph model, export folder) for each registered model, exported with --onnx."""
    name = request.param
    size, options = CASES[name]
    folder = tmp_path_factory.mktemp(name)
    with tiny_builder(name, options) as model_cfg:
        weights, model = make_run(folder / 'run', model_cfg, size)
        # --no_check: the tests below make the same comparison (small_export covers export.py's own check)
        run_export(['--pretrained_model', weights, '--output_dir', str(folder / 'export'), '--no_check']
                   + (['--onnx'] if HAVE_ONNX else []))
    return name, weights, model, str(folder / 'export')


def assert_matches_dygraph(backend, model: nn.Layer, label: str, size: int) -> None:
    for batch in (2, 3):   # one predictor / session for both: the batch axis is dynamic
        images = np.random.default_rng(batch).standard_normal((batch, 3, size, size), dtype=np.float32)
        with paddle.no_grad():
            expected = model(paddle.to_tensor(images))[-1].numpy()
        heatmaps = backend(images)
        assert heatmaps.shape == expected.shape and heatmaps.dtype == np.float32
        diff, scale = float(np.abs(heatmaps - expected).max()), float(np.abs(expected).max())
        print(f'PARITY {label} batch {batch}: max abs diff {diff:.3g}, max |heatmap| {scale:.3g}, '
              f'relative {diff / scale:.2g}')
        assert diff <= TOLERANCE * scale, f'{label} batch {batch}: {diff} > {TOLERANCE} x {scale}'


def test_paddle_inference_with_onednn_matches_dygraph(exported):
    name, _, model, out = exported
    backend = PaddleInferenceBackend(out, 'cpu', mkldnn=True)
    assert backend.device == 'cpu' and backend.onednn
    assert (backend.width, backend.height) == (CASES[name][0],) * 2
    assert_matches_dygraph(backend, model, f'{name} paddle-inference', CASES[name][0])


def test_onnxruntime_matches_dygraph(exported):
    if not HAVE_ONNX:
        pytest.skip(NO_ONNX)
    name, _, model, out = exported
    backend = OnnxRuntimeBackend(out, 'cpu')
    assert backend.device == 'cpu' and (backend.width, backend.height) == (CASES[name][0],) * 2
    assert_matches_dygraph(backend, model, f'{name} onnxruntime', CASES[name][0])


def test_inference_json_round_trips(exported):
    name, weights, model, out = exported
    with open(f'{out}/inference.json') as f:
        saved = json.load(f)
    expected = resolve_config(run_config=weights_config(weights))
    # what travels with the weights (WEIGHT_CONVENTIONS), no dataset paths and no evaluation boxes
    assert {k: saved[k] for k in WEIGHT_CONVENTIONS} == weight_conventions(json.loads(json.dumps(to_dict(expected))))
    assert saved['model'] == to_dict(expected.model) and saved['num_joints'] == expected.model.num_joints == 16
    assert 'dataset_root' not in saved['data'] and 'det_file' not in saved['test']
    assert saved['files'] == {'paddle_model': PROGRAM_FILE, 'paddle_params': 'model.pdiparams',
                              **({'onnx': 'model.onnx'} if HAVE_ONNX else {})}
    # read back as infer.py reads it: the same network, input and test conventions as the weights' config.json
    exported_config = resolve_config(run_config=weights_config(out))
    assert (exported_config.model, exported_config.test) == (expected.model, expected.test)
    assert weight_conventions(to_dict(exported_config))['data'] == weight_conventions(to_dict(expected))['data']
    # pose_resnet's HRNet recipe feeds BGR pixels: the convention must survive the export
    assert saved['data']['color_rgb'] is (not name.startswith('pose_resnet'))


# ------------------------------------------------------------------------------ errors and small cases
@pytest.fixture(scope='module')
def small_export(tmp_path_factory):
    """(weights, export folder) of a 1-stack, 8-feature hourglass at 64 x 64."""
    folder = tmp_path_factory.mktemp('small')
    weights, _ = make_run(folder / 'run', ModelConfig('hourglass', num_stacks=1, num_features=8), 64)
    printed = run_export(['--pretrained_model', weights, '--output_dir', str(folder / 'export')]
                         + (['--onnx'] if HAVE_ONNX else []))
    check = printed.strip().splitlines()[-1]
    assert check.startswith('check, random batch of 2 vs dygraph: paddle-inference (oneDNN) max abs diff '), printed
    assert check.endswith('OK') and ('onnxruntime max abs diff' in check) == HAVE_ONNX, printed
    return weights, str(folder / 'export')


def test_missing_folder_and_files_are_named(small_export, tmp_path):
    with pytest.raises(FileNotFoundError, match='exported model folder not found.*python export.py'):
        PaddleInferenceBackend(str(tmp_path / 'absent'))
    with pytest.raises(FileNotFoundError, match='inference.json not found'):
        PaddleInferenceBackend(str(tmp_path))
    partial = tmp_path / 'partial'
    partial.mkdir()
    shutil.copy(f'{small_export[1]}/inference.json', partial)
    with pytest.raises(FileNotFoundError, match=r'no Paddle inference model .* expected .*model.json \+ model.pdiparams'):
        PaddleInferenceBackend(str(partial))
    if HAVE_ONNX:
        with pytest.raises(FileNotFoundError, match='model.onnx not found, though inference.json lists it'):
            OnnxRuntimeBackend(str(partial))


def test_wrong_input_shapes_are_refused(small_export):
    backends = [PaddleInferenceBackend(small_export[1])] + ([OnnxRuntimeBackend(small_export[1])] if HAVE_ONNX else [])
    for backend in backends:
        assert backend(np.zeros((1, 3, 64, 64), np.float64)).shape == (1, 16, 16, 16)   # float64 is cast
        for shape in [(2, 3, 32, 32), (3, 64, 64), (2, 64, 64, 3), (0, 3, 64, 64)]:
            with pytest.raises(ValueError, match=r'takes images \[N, 3, H, W\] = \[N, 3, 64, 64\] float32; '
                                                 rf'received shape \({", ".join(map(str, shape))},?\)'):
                backend(np.zeros(shape, np.float32))


def test_devices_are_checked(small_export):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'gpu'; received 'tpu'"):
        PaddleInferenceBackend(small_export[1], 'tpu')
    if not paddle.device.is_compiled_with_cuda():
        with pytest.raises(RuntimeError, match='paddlepaddle-gpu'):
            PaddleInferenceBackend(small_export[1], 'gpu')
        plain = PaddleInferenceBackend(small_export[1], 'auto', mkldnn=False, threads=1)
        assert plain.device == 'cpu' and not plain.onednn   # Paddle 3.3 turns oneDNN on unless told not to
    if HAVE_ONNX:
        import onnxruntime
        if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
            with pytest.raises(RuntimeError, match='pip install onnxruntime-gpu'):
                OnnxRuntimeBackend(small_export[1], 'gpu')


def test_missing_optional_packages_name_the_pip_command(small_export, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)   # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match='pip install onnxruntime'):
        OnnxRuntimeBackend(small_export[1])
    monkeypatch.setitem(sys.modules, 'paddle2onnx', None)
    with pytest.raises(ImportError, match='pip install paddle2onnx'):
        export.main(['--pretrained_model', small_export[0], '--onnx', '--output_dir', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()   # refused before writing anything


def test_bad_sizes_and_architectures_are_refused(small_export, tmp_path):
    with pytest.raises(ValueError, match=r'hourglass needs input sides that are multiples of 64; received 100x100'):
        export.main(['--pretrained_model', small_export[0], '--image_size', '100'])
    with pytest.raises(ValueError, match='do not fit the model'):
        export.main(['--pretrained_model', small_export[0], '--num_stacks', '2', '--output_dir', str(tmp_path)])


def test_default_output_dir_and_the_backend_registry(small_export, tmp_path, monkeypatch):
    from lib.inference.backends import load_backend
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / 'output' / 'export' / 'hourglass1_64x64' / 'model.onnx'   # from an earlier --onnx export
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'old')
    printed = run_export(['--pretrained_model', small_export[0], '--no_check'])
    assert f'wrote output/export/hourglass1_64x64/{PROGRAM_FILE}' in printed and 'check' not in printed
    assert 'hourglass1, input 64x64, 16 joints' in printed
    assert not stale.exists()
    if HAVE_ONNX:
        with pytest.raises(FileNotFoundError, match='holds no ONNX model: it was exported without --onnx.*--onnx'):
            OnnxRuntimeBackend('output/export/hourglass1_64x64')
    config = resolve_config({'device': 'cpu'}, run_config=weights_config('output/export/hourglass1_64x64'))
    assert (config.model.label, config.data.input_wh, config.test.flip_test) == ('hourglass1', (64, 64), True)
    backend = load_backend('paddle-inference', 'output/export/hourglass1_64x64', config)
    assert backend(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 16, 16, 16)
    # an exported program keeps its network and input size: another one asked for is refused, naming it
    with pytest.raises(ValueError, match=r'an input of 128x128 \(from the flags\) where the export takes 64x64'):
        load_backend('paddle-inference', 'output/export/hourglass1_64x64', resolve_config(
            {'device': 'cpu', 'data.input_wh': (128, 128)}, run_config=weights_config('output/export/hourglass1_64x64')))


def test_export_takes_cocos_256x192_and_names_the_folder_height_by_width(tmp_path, monkeypatch):
    """Issue 19: --image_size took a square side only, so COCO's 256x192 could not be exported, and the
    folder was named by the width alone."""
    weights, _ = make_run(tmp_path / 'run', ModelConfig('pose_resnet_18'), 64)
    monkeypatch.chdir(tmp_path)
    printed = run_export(['--pretrained_model', weights, '--image_size', '256x192', '--no_check'])
    assert 'pose_resnet_18, input 256x192, 16 joints' in printed
    saved = json.load(open(tmp_path / 'output' / 'export' / 'pose_resnet_18_256x192' / 'inference.json'))
    assert saved['data']['input_wh'] == [192, 256] and saved['input']['shape'] == [-1, 3, 256, 192]


def test_infer_reads_an_exported_folders_inference_json_once(small_export, tmp_path, monkeypatch):
    """infer.py's configuration comes from the folder's inference.json (weights_config), and the exported backend
    takes the parsed file from there instead of reading it again (issue 19: one reader, read once)."""
    import cv2
    import infer
    from lib.inference import conventions
    reads, read_json = [], conventions.read_json
    monkeypatch.setattr(conventions, 'read_json', lambda path, *args, **kwargs: reads.append(path) or
                        read_json(path, *args, **kwargs))
    image = str(tmp_path / 'person.jpg')
    cv2.imwrite(image, np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8))
    assert infer.main(['--input', image, '--backend', 'paddle-inference', '--model_dir', small_export[1],
                       '--output_dir', str(tmp_path / 'out'), '--device', 'cpu']) == 0
    assert [os.path.basename(path) for path in reads] == ['inference.json']


def test_infer_gives_the_same_keypoints_on_every_backend(small_export, tmp_path):
    """infer.py end to end on a real MPII photo (a given person box), dygraph vs the exported models."""
    if not HAVE_ONNX:
        pytest.skip(NO_ONNX)
    from tests.helpers import require_real_mpii
    import infer
    image = os.path.join(require_real_mpii(), 'images', '005808361.jpg')
    weights, model_dir = small_export
    results = {}
    for backend in ('dygraph', 'paddle-inference', 'onnxruntime'):
        source = ['--pretrained_model', weights] if backend == 'dygraph' else ['--model_dir', model_dir]
        out = tmp_path / backend
        assert infer.main(['--input', image, '--backend', backend, *source, '--bbox', '650,60,500,700',
                           '--output_dir', str(out), '--device', 'cpu']) == 0
        person = json.load(open(out / 'keypoints.json'))[0]['persons'][0]
        results[backend] = np.array(person['keypoints'])                  # [16, 3]: x, y, score
    for backend in ('paddle-inference', 'onnxruntime'):
        scores, reference = results[backend][:, 2], results['dygraph'][:, 2]
        np.testing.assert_allclose(scores, reference, rtol=1e-3, atol=1e-5)
        moved = np.abs(results[backend][:, :2] - results['dygraph'][:, :2]).max(axis=1)
        # the same argmax, so the same pixel; a near-tie could flip one joint by a heatmap pixel at most
        assert (moved < 1e-3).mean() >= 0.9, (backend, moved)
