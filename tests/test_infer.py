"""infer.py and lib/inference: box geometry with a fake backend, conventions, and the CLI on real MPII images
with a tiny untrained hourglass (its predictions mean nothing; where they land and what is written does)."""
import dataclasses
import json
import os
import shutil

import cv2
import numpy as np
import pytest

import infer
from lib.config import IMAGENET_MEAN, IMAGENET_STD, preset_config, resolve_config, to_dict
from lib.datasets.heatmaps import generate_target
from lib.datasets.skeletons import COCO, MPII, layout_for
from lib.utils.errors import UnreadableFile
from lib.datasets.transforms import PIXEL_STD, affine_transform_points, get_affine_transform
from lib.inference.backends import load_backend
from lib.inference.conventions import WeightsConfig, weights_config
from lib.inference.predictor import PosePredictor, box_to_center_scale
from tests.helpers import require_real_mpii


# ---------------------------------------------------------------- geometry with a fake backend

class PeakBackend:
    """Heatmaps with one peak per joint at peaks[k] (heatmap pixels) for every crop. A call whose input is
    the previous call's input mirrored is the flip test's: it answers as a perfect model would, joint k in
    its partner's channel at the mirrored column, w - 1 - x, or w - x when the predictor will shift the
    flipped heatmaps one column right (HRNet's SHIFT_HEATMAP), so that the average peaks at x again."""

    def __init__(self, peaks, heatmap_wh, layout, shift):
        self.peaks, self.heatmap_wh, self.layout, self.shift = peaks, heatmap_wh, layout, shift
        self.last, self.calls = None, []

    def __call__(self, images):
        flipped = self.last is not None and self.last.shape == images.shape and np.array_equal(
            images, self.last[:, :, :, ::-1])
        self.last = None if flipped else images.copy()
        self.calls.append((len(images), flipped))
        w, h = self.heatmap_wh
        heatmaps = np.zeros((len(images), self.layout.num_joints, h, w), np.float32)
        for k, (x, y) in enumerate(self.peaks):
            channel = self.layout.flip_index[k] if flipped else k
            column = (w - x if self.shift else w - 1 - x) if flipped else x
            heatmaps[:, channel, y, column] = 1.0
        return [heatmaps * 0.5, heatmaps]     # two stacks: the predictor must decode the last


def test_box_to_center_scale_is_hrnets_xywh2cs():
    center, scale = box_to_center_scale((30, 20, 40, 50), (48, 64))    # w / h = 0.8 > 0.75: h grows
    assert center == pytest.approx([50, 45])
    assert scale == pytest.approx(np.array([40, 40 / 0.75]) / 200 * 1.25)
    center, scale = box_to_center_scale((0, 0, 30, 90), (64, 64))      # too tall for a square: w grows
    assert center == pytest.approx([15, 45]) and scale == pytest.approx([90 / 200 * 1.25] * 2)


@pytest.mark.parametrize('flip_test, shift', [(False, False), (True, True), (True, False)])
def test_heatmap_peak_maps_back_to_the_image_pixel_of_the_box(flip_test, shift):
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)   # W 120, H 90; no symmetry
    boxes = np.array([[30, 20, 40, 50], [70, 5, 30, 30]], np.float32)                # away from the origin
    input_wh, heatmap_wh = (48, 64), (12, 16)
    peaks = [(6, 8)] + [(1 + k % 10, 2 + k % 13) for k in range(1, 16)]               # columns 1..10 of 12
    backend = PeakBackend(peaks, heatmap_wh, MPII, shift)
    predictor = PosePredictor(backend, input_wh, IMAGENET_MEAN, IMAGENET_STD, True, MPII, flip_test=flip_test,
                              shift_heatmap=shift, post_process=True, batch_size=1)
    keypoints, scores = predictor(image, boxes)

    assert keypoints.shape == (2, 16, 2) and scores.shape == (2, 16)
    assert scores == pytest.approx(np.ones((2, 16)))    # the flip average of two equal peaks is the same peak
    assert backend.calls == ([(1, False), (1, True)] * 2 if flip_test else [(1, False)] * 2)
    for box, points in zip(boxes, keypoints):
        x, y, w, h = box
        center = np.array([x + w / 2, y + h / 2])
        w, h = (w, w / 0.75) if w > 0.75 * h else (h * 0.75, h)          # input aspect 48 / 64, then x 1.25
        scale = np.array([w, h]) / PIXEL_STD * 1.25
        inverse = get_affine_transform(center, scale, 0, heatmap_wh, inv=True)
        assert points == pytest.approx(affine_transform_points(np.array(peaks, float), inverse), abs=1e-3)
        assert points[0] == pytest.approx(center, abs=1e-3)                 # the heatmap centre is the box centre


def test_crops_are_normalised_like_training_and_no_box_means_the_whole_image():
    image = np.zeros((40, 100, 3), np.uint8)
    image[:] = (10, 20, 30)                                     # B, G, R
    seen = []

    def backend(images):
        seen.append(images)
        return np.zeros((len(images), 16, 16, 16), np.float32)

    for color_rgb, first in ((True, 30), (False, 10)):
        predictor = PosePredictor(backend, (64, 64), IMAGENET_MEAN, IMAGENET_STD, color_rgb, MPII, flip_test=False)
        keypoints, _ = predictor(image)                          # whole image: box (0, 0, 100, 40)
        assert keypoints.shape == (1, 16, 2)
        assert seen[-1].dtype == np.float32 and seen[-1].shape == (1, 3, 64, 64)
        assert seen[-1][0, 0, 32, 32] == pytest.approx((first / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])
    # zero heatmaps decode to heatmap pixel (0, 0): the top-left corner of the padded whole-image box
    side = 100 * 1.25
    assert keypoints[0, 0] == pytest.approx([50 - side / 2, 20 - side / 2], abs=1e-3)
    empty, _ = predictor(image, np.zeros((0, 4)))
    assert empty.shape == (0, 16, 2)
    with pytest.raises(ValueError, match='w, h > 0'):
        predictor(image, [[0, 0, 0, 10]])


def test_real_mpii_ground_truth_survives_the_round_trip():
    """A backend that returns the ground truth's Gaussian targets for the box: decoding gives the annotated
    joints back within half a heatmap pixel (the rounding of generate_target)."""
    root = require_real_mpii()
    record = next(r for r in json.load(open(os.path.join(root, 'annot', 'valid.json')))
                  if r['image'] == '004645041.jpg')
    joints, visible = np.array(record['joints'], float), np.array(record['joints_vis'], float)
    box, input_wh, heatmap_wh = np.array([650, 190, 290, 530], np.float32), (192, 256), (48, 64)
    center, scale = box_to_center_scale(box, input_wh)
    crop_joints = affine_transform_points(joints, get_affine_transform(center, scale, 0, input_wh))
    target, _ = generate_target(crop_joints, visible, input_wh, heatmap_wh, 2.0)
    predictor = PosePredictor(lambda images: target[None].repeat(len(images), 0), input_wh, IMAGENET_MEAN,
                              IMAGENET_STD, True, MPII, flip_test=False)
    keypoints, _ = predictor(cv2.imread(os.path.join(root, 'images', record['image'])), box)
    stride = scale[0] * PIXEL_STD / heatmap_wh[0]
    assert np.abs(keypoints[0] - joints)[visible > 0].max() <= 0.5 * stride + 1e-3


def test_layouts_by_number_of_joints():
    assert layout_for(16) is MPII and layout_for(17) is COCO
    assert COCO.flip_index[5] == 6 and len(COCO.skeleton) == 19 and COCO.is_left(15)
    with pytest.raises(ValueError, match='16 \\(mpii\\), 17 \\(coco\\)'):
        layout_for(21)


# ---------------------------------------------------------------- conventions and backends

@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    """An untrained 1-stack, 16-feature hourglass at 64 x 64, saved as train.py saves a run."""
    from lib.models import build_model_from
    from lib.utils.checkpoint import save_weights
    config = preset_config('hourglass', 'data/mpii')
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, num_stacks=1, num_features=16),
                                 data=dataclasses.replace(config.data, input_wh=(64, 64), heatmap_wh=(16, 16)))
    run = tmp_path_factory.mktemp('tiny_run')
    weights = run / 'best_model' / 'model.pdparams'
    save_weights(build_model_from(config.model), str(weights))
    (run / 'config.json').write_text(json.dumps(to_dict(config)))
    return str(weights)


def test_conventions_come_from_the_run_config_then_the_preset(tiny_weights, tmp_path):
    config = resolve_config(run_config=weights_config(tiny_weights))
    model, data, test = config.model, config.data, config.test
    assert (model.name, model.num_stacks, model.num_features, model.num_joints) == ('hourglass', 1, 16, 16)
    assert data.input_wh == (64, 64) and data.heatmap_wh == (16, 16) and data.mean == IMAGENET_MEAN
    assert test.flip_test and test.shift_heatmap and test.post_process
    config = resolve_config({'data.input_wh': (128, 128), 'test.flip_test': False, 'model.num_stacks': None},
                            run_config=weights_config(tiny_weights))
    assert config.data.input_wh == (128, 128) and config.data.heatmap_wh == (32, 32) and not config.test.flip_test
    assert config.model.num_stacks == 1
    # no config.json: the preset; a converted princeton-vl model's conventions are taken as saved
    assert weights_config(str(tmp_path / 'model.pdparams')) == {}
    config = resolve_config(run_config=weights_config(str(tmp_path / 'model.pdparams')))
    assert (config.model.num_stacks, config.data.input_wh, config.data.color_rgb) == (8, (256, 256), True)
    config = resolve_config(run_config=WeightsConfig({'model': {'name': 'hourglass'}, 'data': {
        'mean': [0, 0, 0], 'std': [1, 1, 1]}, 'test': {'shift_heatmap': False}}, 'saved'))
    assert config.data.mean == (0, 0, 0) and config.data.std == (1, 1, 1) and not config.test.shift_heatmap
    assert config.source_of('data.mean') == 'saved'


def test_load_backend_dygraph_and_unknown_kinds(tiny_weights):
    config = resolve_config({'device': 'cpu'}, run_config=weights_config(tiny_weights))
    backend = load_backend('dygraph', tiny_weights, config)
    heatmaps = backend(np.zeros((2, 3, 64, 64), np.float32))
    assert heatmaps.shape == (2, 16, 16, 16) and heatmaps.dtype == np.float32
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'; choose one of"):
        load_backend('tensorrt', tiny_weights, config)


# ---------------------------------------------------------------- the CLI

@pytest.fixture(scope='module')
def mpii_images():
    folder = os.path.join(require_real_mpii(), 'images')
    names = sorted(n for n in os.listdir(folder) if n.endswith('.jpg'))
    if len(names) < 3:
        pytest.skip(f'fewer than 3 real MPII images in {folder}')
    return [os.path.join(folder, n) for n in names[:3]]


def run_infer(weights, *args):
    assert infer.main(['--pretrained_model', weights, '--device', 'cpu', *map(str, args)]) == 0


def read_json(folder):
    return json.load(open(os.path.join(folder, 'keypoints.json')))


def check_person(person, image_wh):
    assert set(person) == {'bbox', 'keypoints', 'score'}
    keypoints = np.array(person['keypoints'])
    assert keypoints.shape == (16, 3) and person['score'] == pytest.approx(keypoints[:, 2].mean(), abs=1e-3)
    return keypoints


def test_single_image_whole_image_person(tiny_weights, mpii_images, tmp_path):
    run_infer(tiny_weights, '--input', mpii_images[0], '--output_dir', tmp_path)
    source = cv2.imread(mpii_images[0])
    drawn = cv2.imread(str(tmp_path / os.path.basename(mpii_images[0])))
    assert drawn.shape == source.shape
    records = read_json(tmp_path)
    assert [r['image'] for r in records] == [os.path.basename(mpii_images[0])]
    (person,) = records[0]['persons']
    h, w = source.shape[:2]
    assert person['bbox'] == [0, 0, w, h]
    keypoints = check_person(person, (w, h))
    side = max(w, h) * 1.25                       # square input: the padded box is a square around the centre
    assert np.all(np.abs(keypoints[:, :2] - [w / 2, h / 2]) <= side / 2 + 1)


def test_folder_with_one_box_for_every_image(tiny_weights, mpii_images, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    for path in mpii_images:
        shutil.copy(path, folder)
    (folder / 'notes.txt').write_text('not an image')
    run_infer(tiny_weights, '--input', folder, '--bbox', '300,100,200,400', '--output_dir', tmp_path / 'out')
    records = read_json(tmp_path / 'out')
    assert [r['image'] for r in records] == [os.path.basename(p) for p in mpii_images]
    for record, path in zip(records, mpii_images):
        assert cv2.imread(str(tmp_path / 'out' / record['image'])).shape == cv2.imread(path).shape
        (person,) = record['persons']
        assert person['bbox'] == [300, 100, 200, 400]
        keypoints = check_person(person, None)
        # within the box made square (the input is) and enlarged by 1.25, centred on (400, 300)
        assert np.all(np.abs(keypoints[:, :2] - [400, 300]) <= 400 * 1.25 / 2 + 1)


def test_video_frames_in_frames_out(tiny_weights, tmp_path):
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(5):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    run_infer(tiny_weights, '--input', video, '--val_batch_size', 2, '--output_dir', tmp_path / 'out')
    capture = cv2.VideoCapture(str(tmp_path / 'out' / 'clip_pose.mp4'))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    records = read_json(tmp_path / 'out')
    assert [r['image'] for r in records] == [0, 1, 2, 3, 4]
    assert all(r['persons'][0]['bbox'] == [0, 0, 64, 48] for r in records)


def detections(image_id, *extra):
    return [{'image_id': image_id, 'bbox': [300, 100, 200, 400], 'score': 0.9, 'category_id': 1},
            {'image_id': image_id, 'bbox': [10, 10, 50, 50], 'score': 0.2, 'category_id': 1},    # below --det_thr
            {'image_id': image_id, 'bbox': [10, 10, 50, 50], 'score': 0.9, 'category_id': 3},    # not a person
            *extra]


def test_det_file_with_an_images_list(tiny_weights, mpii_images, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    shutil.copy(mpii_images[0], folder / 'a.jpg')
    shutil.copy(mpii_images[1], folder / 'b.jpg')
    det = {'images': [{'id': 7, 'file_name': 'val/a.jpg'}, {'id': 9, 'file_name': 'b.jpg'}],
           'annotations': detections(7, {'image_id': 7, 'bbox': [600, 50, 100, 300], 'score': 0.6, 'category_id': 1})}
    (tmp_path / 'det.json').write_text(json.dumps(det))
    run_infer(tiny_weights, '--input', folder, '--det_file', tmp_path / 'det.json', '--output_dir', tmp_path / 'out')
    records = {r['image']: r['persons'] for r in read_json(tmp_path / 'out')}
    assert [p['bbox'] for p in records['a.jpg']] == [[300, 100, 200, 400], [600, 50, 100, 300]]
    assert records['b.jpg'] == []                               # id 9 has no detection: nobody, drawn as is
    difference = cv2.imread(str(tmp_path / 'out' / 'b.jpg')).astype(int) - cv2.imread(mpii_images[1])
    assert np.abs(difference).mean() < 2                          # nothing drawn; JPEG re-encoding only


def test_det_file_matched_by_coco_file_names(tiny_weights, mpii_images, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    for i, path in enumerate(mpii_images[:2], start=1):
        shutil.copy(path, folder / f'{i:012d}.jpg')
    (tmp_path / 'det.json').write_text(json.dumps(detections(1) + detections(2)))
    run_infer(tiny_weights, '--input', folder, '--det_file', tmp_path / 'det.json', '--output_dir', tmp_path / 'out')
    records = read_json(tmp_path / 'out')
    assert [r['image'] for r in records] == ['000000000001.jpg', '000000000002.jpg']
    assert all([p['bbox'] for p in r['persons']] == [[300, 100, 200, 400]] for r in records)

    (tmp_path / 'other.json').write_text(json.dumps(detections(139)))
    with pytest.raises(ValueError, match="no detection for '000000000001.jpg'.*integer in the file name"):
        infer.main(['--input', str(folder), '--pretrained_model', tiny_weights, '--det_file',
                    str(tmp_path / 'other.json'), '--output_dir', str(tmp_path / 'out2')])


def test_input_errors(tiny_weights, mpii_images, tmp_path, capsys):
    def run(*args):
        infer.main(['--pretrained_model', tiny_weights, '--device', 'cpu', '--output_dir', str(tmp_path / 'out'),
                    *map(str, args)])

    with pytest.raises(FileNotFoundError, match='--input .*nothing.jpg does not exist'):
        run('--input', tmp_path / 'nothing.jpg')
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(UnreadableFile, match='cannot read image .*broken.jpg: OpenCV cannot decode it'):
        run('--input', broken)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='holds no images; accepted extensions: .jpg, .jpeg, .png'):
        run('--input', empty)
    bad_video = tmp_path / 'broken.mp4'
    bad_video.write_bytes(b'not a video' * 10)
    with pytest.raises(ValueError, match='cannot open video .*broken.mp4.*re-encode'):
        run('--input', bad_video)
    with pytest.raises(ValueError, match='--bbox .* is not x,y,w,h'):
        run('--input', mpii_images[0], '--bbox', '1,2,3')
    with pytest.raises(SystemExit):
        infer.parse_args(['--input', 'x.jpg', '--backend', 'tensorrt', '--model_dir', 'm'])
    assert "invalid choice: 'tensorrt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer.parse_args(['--input', 'x.jpg', '--backend', 'onnxruntime', '--pretrained_model', 'm.pdparams'])
    assert '--backend onnxruntime takes --model_dir' in capsys.readouterr().err

    # in a folder, an unreadable image is skipped with a warning
    folder = tmp_path / 'mixed'
    folder.mkdir()
    shutil.copy(broken, folder / 'a_broken.jpg')
    shutil.copy(mpii_images[0], folder / 'b.jpg')
    run('--input', folder)
    assert 'warning: cannot read image' in capsys.readouterr().err
    assert [r['image'] for r in read_json(tmp_path / 'out')] == ['b.jpg']
    with pytest.raises(ValueError, match='would overwrite'):
        infer.main(['--input', str(folder), '--pretrained_model', tiny_weights, '--output_dir', str(folder)])


def test_onnxruntime_path_imports_no_paddle():
    """infer.py with an exported model needs numpy, OpenCV and onnxruntime only (lib/inference/backends.py)."""
    import subprocess
    import sys
    code = ('import sys, infer; from lib.inference.backends import backend_class; backend_class("onnxruntime"); '
            'print(sorted(m for m in sys.modules if m.split(".")[0] == "paddle"))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == '[]', out.stdout
