"""COCO keypoints (SPEC C.4, H): loading, detected boxes, half body, OKS, OKS-NMS, rescoring and COCOeval."""
import json
import os
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lib.config import DataConfig
from lib.core.validate import oracle
from lib.core.coco_eval import (STATS_NAMES, coco_eval_line, coco_table,
                                evaluate_coco, oks, oks_nms, rescore, select_keypoints, write_keypoint_results)
from lib.datasets.coco import (coco_files, load_coco_annotations,
                               load_detection_boxes, parse_coco_keypoints, sanitize_box)
from lib.datasets.half_body import half_body_transform, random_half_body, upper_body_ids
from lib.datasets.skeletons import COCO, MPII
from lib.datasets.transforms import box_to_center_scale as xywh_to_center_scale
from tests.helpers import COCO_MINI, MINI_VAL_JSON, MMPOSE_COCO, pycocotools_stats, require

TEST_COCO_JSON = os.path.join(MMPOSE_COCO, 'test_coco.json')
TEST_DET_JSON = os.path.join(MMPOSE_COCO, 'test_coco_det_AP_H_56.json')
INPUT_WH, HEATMAP_WH = (192, 256), (48, 64)




def gt_poses(records):
    """Ground truth as predictions: (x, y, vis) per record, score 1."""
    return [{'image_id': r['image_id'], 'keypoints': np.concatenate([r['joints'], r['joints_vis'][:, None]], 1),
             'score': 1.0, 'center': r['center'], 'scale': r['scale']} for r in records]


# --- boxes and records -------------------------------------------------------------------------------------

def test_xywh_to_center_scale_known_answers():
    # Wide box: w > 0.75 h -> h = w / 0.75. Tall box: w < 0.75 h -> w = 0.75 h. Both x 1.25, / 200.
    center, scale = xywh_to_center_scale([10, 20, 300, 100], 0.75)
    assert_allclose(center, [160, 70])
    assert_allclose(scale, [300 / 200 * 1.25, 400 / 200 * 1.25], rtol=1e-6)
    center, scale = xywh_to_center_scale([0, 0, 30, 200], 0.75)
    assert_allclose(center, [15, 100])
    assert_allclose(scale, [150 / 200 * 1.25, 200 / 200 * 1.25], rtol=1e-6)
    assert center.dtype == scale.dtype == np.float32   # as HRNet


def test_sanitize_box():
    assert sanitize_box([-5, 10, 20, 30], 640, 480) == [0, 10, 19, 29]          # x clipped, w - 1
    assert sanitize_box([630, 470, 50, 50], 640, 480) == [630, 470, 9, 9]       # clipped to W-1, H-1
    assert sanitize_box([700, 10, 20, 30], 640, 480) is None                    # right of the image


def test_ground_truth_records(tmp_path):
    records = parse_coco_keypoints(require(TEST_COCO_JSON), INPUT_WH)
    # 14 annotations, 2 without keypoints (SPEC H.1 step 3); images in file order.
    assert [r['image_id'] for r in records] == [785] + [40083] * 2 + [196141] * 4 + [197388] * 5
    first = records[0]
    assert first['image'] == '000000000785.jpg' and first['score'] == 1.0
    # bbox [280.79, 44.73, 218.7, 346.68] on a 640x425 image: w - 1 and h - 1 after sanitising.
    w, h = 217.7, 345.68
    assert_allclose(first['center'], [280.79 + w / 2, 44.73 + h / 2], rtol=1e-6)
    assert_allclose(first['scale'], [h * 0.75 / 200 * 1.25, h / 200 * 1.25], rtol=1e-6)
    assert_allclose(first['joints'][0], [367, 81])          # already 0-based
    assert set(np.unique(np.concatenate([r['joints_vis'] for r in records]))) <= {0.0, 1.0}   # min(v, 1)
    assert first['joints'].shape == (17, 2) and first['joints_vis'].shape == (17,)


def test_coco_mini_layout_and_counts():
    require(COCO_MINI)
    files = coco_files(COCO_MINI, 'val2017')
    assert files.image_dir == os.path.join(COCO_MINI, 'val2017')   # the layout without images/
    val = load_coco_annotations(COCO_MINI, 'val2017', INPUT_WH)
    assert len(val) == 68   # 118 annotations: 50 without keypoints (the crowd one is among them)
    assert all(os.path.isfile(os.path.join(files.image_dir, r['image'])) for r in val)
    assert len(load_coco_annotations(COCO_MINI, 'train2017', INPUT_WH)) == 86


def test_hrnet_layout_is_found(tmp_path):
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'person_keypoints_val2017.json').write_text('{}')
    (tmp_path / 'images' / 'val2017').mkdir(parents=True)
    assert coco_files(str(tmp_path), 'val2017').image_dir == str(tmp_path / 'images' / 'val2017')


def test_detection_boxes():
    det, gt = require(TEST_DET_JSON), require(TEST_COCO_JSON)
    counts = {thre: len(load_detection_boxes(det, gt, 'val2017', INPUT_WH, thre)) for thre in (0.0, 0.1, 0.5, 0.9)}
    assert counts == {0.0: 118, 0.1: 55, 0.5: 18, 0.9: 14}
    first = load_detection_boxes(det, gt, 'val2017', INPUT_WH, 0.0)[0]
    # bbox [277.1183158543966, 45.699667786163765, 225.09126579259754, 333.5602652943344], not sanitised:
    # centre = (x + w/2, y + h/2); w < 0.75 h, so w = 0.75 h = 250.170199; scale = (w, h) / 200 * 1.25.
    assert first['image_id'] == 785 and first['image'] == '000000000785.jpg'
    assert_allclose(first['center'], [389.663949, 212.479800], rtol=1e-6)
    assert_allclose(first['scale'], [1.563564, 2.084752], rtol=1e-6)
    assert first['score'] == pytest.approx(0.9999731779098511)
    assert not first['joints'].any() and first['joints_vis'].tolist() == [1.0] * 17


# --- errors --------------------------------------------------------------------------------------------------

def test_missing_annotation_names_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_coco_annotations(str(tmp_path), 'val2017', INPUT_WH)
    message = str(error.value)
    assert 'person_keypoints_val2017.json' in message
    assert os.path.join(str(tmp_path), 'images', 'val2017') in message and f'{tmp_path}/val2017/' in message
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'person_keypoints_val2017.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match='no image folder for val2017'):
        coco_files(str(tmp_path), 'val2017')
    with pytest.raises(ValueError, match="unknown COCO image set 'valid'"):
        coco_files(str(tmp_path), 'valid')


def _annotation_file(tmp_path, keypoints_length=51):
    image = {'id': 1, 'width': 100, 'height': 100}
    good = {'image_id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 50.0, 'bbox': [10, 10, 20, 40],
            'keypoints': [15, 15, 2] * 17, 'num_keypoints': 17, 'id': 1}
    bad = dict(good, id=2, keypoints=[15.0] * keypoints_length)
    path = tmp_path / 'person_keypoints_val2017.json'
    path.write_text(json.dumps({'images': [image], 'annotations': [good, good, bad],
                                'categories': [{'id': 1, 'name': 'person'}]}))
    return str(path)


def test_malformed_annotation_names_its_index(tmp_path):
    with pytest.raises(ValueError, match=r'annotation 2 is malformed: keypoints has shape \(53,\), expected 51'):
        parse_coco_keypoints(_annotation_file(tmp_path, keypoints_length=53), INPUT_WH)
    broken = tmp_path / 'broken.json'
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match='not valid JSON'):
        parse_coco_keypoints(str(broken), INPUT_WH)


def test_detection_file_errors(tmp_path):
    gt = require(TEST_COCO_JSON)
    with pytest.raises(FileNotFoundError, match='detection file not found'):
        load_detection_boxes(str(tmp_path / 'none.json'), gt, 'val2017', INPUT_WH, 0.0)
    unknown = tmp_path / 'unknown.json'
    unknown.write_text(json.dumps([{'image_id': 785, 'category_id': 1, 'bbox': [1, 2, 3, 4], 'score': 0.9},
                                   {'image_id': 123456, 'category_id': 1, 'bbox': [1, 2, 3, 4], 'score': 0.9}]))
    with pytest.raises(ValueError, match=r'not in the val2017 annotation file \(first: \[123456\]\)'):
        load_detection_boxes(str(unknown), gt, 'val2017', INPUT_WH, 0.0)
    with pytest.raises(ValueError, match='no person box has score >= image_thre 0.999999'):
        load_detection_boxes(require(TEST_DET_JSON), gt, 'val2017', INPUT_WH, 0.999999)
    garbled = tmp_path / 'garbled.json'
    garbled.write_text('[{"image_id": 785,')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_detection_boxes(str(garbled), gt, 'val2017', INPUT_WH, 0.0)


@pytest.mark.parametrize('field, value, message', [
    ('score', 'high', "score 'high' is not a number in \\[0, 1\\]"),
    ('score', float('nan'), 'score nan is not a number'),
    ('bbox', [1, 2, 'w', 4], "bbox \\[1, 2, 'w', 4\\] is not 4 finite numbers"),
    ('bbox', [1, 2, -3, 4], 'negative or zero size'),
    ('bbox', [5000, 10, 30, 40], 'lies outside its image 785'),
    ('image_id', '785', "image_id '785' is not an integer"),
    ('category_id', 'person', "category_id 'person' is not an integer"),
])
def test_detection_fields_are_checked(tmp_path, field, value, message):
    gt = require(TEST_COCO_JSON)
    det = {'image_id': 785, 'category_id': 1, 'bbox': [10, 20, 30, 40], 'score': 0.9}
    det[field] = value
    path = tmp_path / 'dets.json'
    path.write_text(json.dumps([det]))
    with pytest.raises(ValueError, match=f'dets.json: box 0 is malformed: {message}|dets.json: box 0 .*{message}'):
        load_detection_boxes(str(path), gt, 'val2017', INPUT_WH, 0.0)


def test_missing_pycocotools_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'pycocotools', None)
    monkeypatch.setitem(sys.modules, 'pycocotools.coco', None)
    with pytest.raises(ImportError, match='pip install pycocotools'):
        evaluate_coco(str(tmp_path / 'gt.json'), str(tmp_path / 'res.json'))


# --- half body and joint weights (SPEC C.4, C.5) -------------------------------------------------------------

class FixedNormal:
    """Stands in for np.random.Generator: standard_normal() returns the given value."""
    def __init__(self, value, uniform=0.0):
        self.value, self.uniform = value, uniform

    def standard_normal(self):
        return self.value

    def random(self):
        return self.uniform


def _half_body_pose():
    joints = np.zeros((17, 2))
    joints[5], joints[6], joints[9] = (100, 100), (140, 100), (120, 160)     # shoulders, a wrist: upper
    joints[11], joints[12], joints[13], joints[15] = (105, 200), (135, 200), (100, 260), (100, 330)
    vis = np.zeros(17)
    vis[[5, 6, 9, 11, 12, 13, 15]] = 1
    return joints, vis


def test_upper_body_ids_match_hrnet():
    assert upper_body_ids(COCO) == tuple(range(11))       # HRNet COCODataset.upper_body_ids
    assert upper_body_ids(MPII) == tuple(range(7, 16))    # HRNet MPIIDataset.upper_body_ids


def test_half_body_known_answers():
    joints, vis = _half_body_pose()
    # N(0,1) = 0.3 < 0.5 and 3 upper joints: upper body. Mean (120, 120); extent 40 x 60; 40 < 0.75 * 60,
    # so w = 45; scale = (45, 60) / 200 * 1.5.
    center, scale = half_body_transform(joints, vis, COCO, 0.75, FixedNormal(0.3))
    assert_allclose(center, [120, 120])
    assert_allclose(scale, [45 / 200 * 1.5, 60 / 200 * 1.5], rtol=1e-6)
    # N(0,1) = 0.7: lower body (4 joints). Mean (110, 247.5); extent 35 x 130 -> w = 97.5.
    center, scale = half_body_transform(joints, vis, COCO, 0.75, FixedNormal(0.7))
    assert_allclose(center, [110, 247.5])
    assert_allclose(scale, [97.5 / 200 * 1.5, 130 / 200 * 1.5], rtol=1e-6)
    # Wide selection: h = w / ar.
    vis_wide = np.zeros(17)
    vis_wide[[5, 6, 9]] = 1
    wide = joints.copy()
    wide[9] = (200, 110)
    center, scale = half_body_transform(wide, vis_wide, COCO, 0.75, FixedNormal(0.7))   # lower has 0: upper
    assert_allclose(scale, [100 / 200 * 1.5, 100 / 0.75 / 200 * 1.5], rtol=1e-6)
    # Only 2 lower joints and N >= 0.5: falls back to the upper joints.
    vis_two_lower = vis.copy()
    vis_two_lower[[13, 15]] = 0
    center, _ = half_body_transform(joints, vis_two_lower, COCO, 0.75, FixedNormal(2.0))
    assert_allclose(center, [120, 120])
    # One visible joint per half: fewer than 2 selected, keep the box.
    vis_one = np.zeros(17)
    vis_one[[5, 11]] = 1
    assert half_body_transform(joints, vis_one, COCO, 0.75, FixedNormal(0.0)) is None


def test_random_half_body_gate():
    joints, vis = _half_body_pose()
    many = np.ones(17)
    assert random_half_body(joints, vis, COCO, 0.75, FixedNormal(0.3), prob=1.0, min_joints=8) is None  # 7 <= 8
    assert random_half_body(joints, vis, COCO, 0.75, FixedNormal(0.3), prob=1.0, min_joints=6) is not None
    assert random_half_body(joints, many, COCO, 0.75, FixedNormal(0.3, uniform=0.5), prob=0.3, min_joints=8) is None

    class NoDraws:
        def random(self):
            raise AssertionError('prob <= 0 must not draw')
    assert random_half_body(joints, many, COCO, 0.75, NoDraws(), prob=-1.0, min_joints=8) is None


def test_joints_weight():
    from lib.datasets.skeletons import COCO
    weights = COCO.joints_weight_array
    assert weights.shape == (17, 1)
    assert weights[[7, 8, 13, 14], 0].tolist() == [pytest.approx(1.2)] * 4
    assert weights[[9, 10, 15, 16], 0].tolist() == [1.5] * 4
    assert MPII.joints_weight_array.tolist() == [[1.0]] * 16


# --- OKS, NMS, rescoring (SPEC H.3) --------------------------------------------------------------------------

def _pose(offset=(0.0, 0.0)):
    joints = np.stack([100 + 10 * np.arange(17), 50 + 20 * np.arange(17), np.ones(17)], axis=1)
    joints[:, :2] += offset
    return joints


def test_oks_known_answers():
    g = _pose()
    moved = g.copy()
    moved[9, :2] += (3, 4)                       # left wrist, sigma 0.062, off by d = 5 px
    area = 10000.0                               # s^2
    d = np.stack([g, moved])
    k = 2 * 0.062
    expected = (16 + np.exp(-25 / (2 * area * k ** 2))) / 17    # averaged over all 17 joints
    assert_allclose(oks(g, d, area, np.array([area, area])), [1.0, expected], rtol=1e-12)
    # The area is the mean of both; the scores (third column) are ignored; flat [51] inputs work too.
    moved[:, 2] = 0
    assert_allclose(oks(g.ravel(), moved.reshape(1, -1), 8000.0, np.array([12000.0])), [expected], rtol=1e-12)
    assert oks(g, d[:0], area, np.zeros(0)).shape == (0,)


def test_oks_nms_known_answer():
    a = _pose()
    near = _pose((1.0, 1.0))        # OKS with a > 0.9: a near-duplicate
    other = _pose((300.0, 0.0))     # someone else
    area = 200.0 * 300.0
    assert oks(a, near[None], area, [area])[0] > 0.9 and oks(a, other[None], area, [area])[0] < 0.1
    poses = [{'keypoints': a, 'score': 0.9, 'area': area}, {'keypoints': near, 'score': 0.8, 'area': area},
             {'keypoints': other, 'score': 0.95, 'area': area}]
    assert oks_nms(poses, 0.9) == [2, 0]            # best first; the near-duplicate of 0 is dropped
    poses[1]['score'] = 0.99
    assert oks_nms(poses, 0.9) == [1, 2]            # now the duplicate wins and 0 goes
    assert oks_nms(poses, 1.0) == [1, 2, 0]         # nothing is above 1
    assert oks_nms([], 0.9) == []


def test_rescore_known_answer():
    maxvals = np.zeros((3, 17))
    maxvals[0, :4] = [0.1, 0.3, 0.5, 0.9]           # mean of the three > 0.2 = 0.5666...
    maxvals[1, :3] = [0.2, 0.15, 0.05]              # none > 0.2 (strict): 0
    maxvals[2, :] = 1.0
    assert_allclose(rescore(maxvals, np.array([0.8, 0.9, 0.5]), 0.2), [1.7 / 3 * 0.8, 0.0, 0.5], rtol=1e-12)


def test_select_keypoints_rescores_then_nms_per_image():
    a, near, other = _pose(), _pose((1.0, 1.0)), _pose((300.0, 0.0))
    preds = np.stack([a, near, other, near])[:, :, :2]
    maxvals = np.full((4, 17), 0.5)
    maxvals[1] = 1.0
    scales = np.full((4, 2), [1.0, 1.5])
    kept = select_keypoints(preds, maxvals, np.zeros((4, 2)), scales, np.array([1.0, 0.6, 1.0, 1.0]), [7, 7, 7, 8])
    # image 7: scores 0.5, 0.6, 0.5 -> keep 1 (which suppresses 0), then 2; image 8 keeps its only pose.
    assert [(p['image_id'], p['score']) for p in kept] == [(7, 0.6), (7, 0.5), (8, 0.5)]
    assert kept[0]['area'] == pytest.approx(200 * 300)
    assert_allclose(kept[0]['keypoints'], np.concatenate([near[:, :2], np.ones((17, 1))], 1))


# --- COCOeval ------------------------------------------------------------------------------------------------

def test_ground_truth_scores_ap_1(tmp_path, pycocotools):
    for gt_json, records in ((require(MINI_VAL_JSON), load_coco_annotations(COCO_MINI, 'val2017', INPUT_WH)),
                             (require(TEST_COCO_JSON), parse_coco_keypoints(TEST_COCO_JSON, INPUT_WH))):
        results = write_keypoint_results(gt_poses(records), str(tmp_path / 'results.json'))
        assert set(results[0]) == {'image_id', 'category_id', 'keypoints', 'score', 'center', 'scale'}
        assert len(results[0]['keypoints']) == 51 and results[0]['category_id'] == 1
        metrics = evaluate_coco(gt_json, str(tmp_path / 'results.json'))
        assert list(metrics) == list(STATS_NAMES)
        assert all(value == pytest.approx(1.0) for value in metrics.values()), metrics


def test_evaluated_images_restrict_the_ground_truth(tmp_path, pycocotools):
    records = load_coco_annotations(require(COCO_MINI), 'val2017', INPUT_WH)
    half = sorted({r['image_id'] for r in records})[::2]
    write_keypoint_results(gt_poses([r for r in records if r['image_id'] in half]), str(tmp_path / 'r.json'))
    assert evaluate_coco(MINI_VAL_JSON, str(tmp_path / 'r.json'), image_ids=half)['AP'] == pytest.approx(1.0)
    assert evaluate_coco(MINI_VAL_JSON, str(tmp_path / 'r.json'))['AR'] < 0.7   # the other half is missed


def test_evaluate_coco_equals_pycocotools(tmp_path, pycocotools):
    records = load_coco_annotations(require(COCO_MINI), 'val2017', INPUT_WH)
    rng = np.random.default_rng(0)
    poses = gt_poses(records)
    for pose in poses:   # jitter every joint by ~N(0, 4 px), random scores, a few false positives
        pose['keypoints'] = pose['keypoints'] + np.concatenate([rng.normal(0, 4, (17, 2)), np.zeros((17, 1))], 1)
        pose['score'] = float(rng.uniform(0.3, 1.0))
    poses += [dict(p, keypoints=p['keypoints'] + [40, 25, 0], score=0.2) for p in poses[::5]]
    write_keypoint_results(poses, str(tmp_path / 'perturbed.json'))
    ours = evaluate_coco(MINI_VAL_JSON, str(tmp_path / 'perturbed.json'))
    direct = pycocotools_stats(MINI_VAL_JSON, str(tmp_path / 'perturbed.json'))
    assert list(ours.values()) == list(direct)       # literally the same numbers
    assert 0.3 < ours['AP'] < 0.95
    line = coco_eval_line(ours)
    assert line.startswith('[EVAL] AP=') and ' AP.5=' in line and ' AP(M)=' in line and line.endswith(
        f'AR(L)={ours["AR (L)"]:.6f}')
    table = coco_table(ours, 'perturbed').splitlines()
    assert table[0] == '| Arch | ' + ' | '.join(STATS_NAMES) + ' |' and table[2].startswith('| perturbed | ')


def test_evaluate_coco_errors(tmp_path, pycocotools):
    empty = tmp_path / 'empty.json'
    empty.write_text('[]')
    with pytest.raises(ValueError, match='no predictions'):
        evaluate_coco(require(TEST_COCO_JSON), str(empty))
    foreign = tmp_path / 'foreign.json'
    write_keypoint_results([{'image_id': 42, 'keypoints': np.ones((17, 3)), 'score': 1.0}], str(foreign))
    with pytest.raises(ValueError, match=r'not in .*test_coco.json \(first: \[42\]\)'):
        evaluate_coco(TEST_COCO_JSON, str(foreign))


def test_oracle_ap_at_256x192(tmp_path, pycocotools):
    """A perfect network at 64x48 heatmaps, through HRNet's post-processing (rescoring, OKS-NMS): AP 0.9820."""
    records = load_coco_annotations(require(COCO_MINI), 'val2017', INPUT_WH)
    preds, maxvals = oracle(records, DataConfig(dataset_root='', input_wh=INPUT_WH, heatmap_wh=HEATMAP_WH, sigma=2.0))
    assert preds.shape == (len(records), 17, 2) and maxvals.shape == (len(records), 17, 1)
    kept = select_keypoints(preds, maxvals[:, :, 0], np.stack([r['center'] for r in records]),
                            np.stack([r['scale'] for r in records]), np.ones(len(records)),
                            [r['image_id'] for r in records])
    assert len(kept) == len(records)   # no two ground-truth people overlap by OKS > 0.9
    write_keypoint_results(kept, str(tmp_path / 'oracle.json'))
    metrics = evaluate_coco(MINI_VAL_JSON, str(tmp_path / 'oracle.json'))
    assert metrics['AP'] == pytest.approx(0.98199, abs=1e-4) and metrics['AP'] < 1.0
    assert metrics['AP .5'] == pytest.approx(1.0)
