"""train.py and val.py on COCO (SPEC H): a few iterations of pose_resnet_18 on coco_mini, val.py with ground-truth
boxes, detected boxes, the oracle and a results file, the COCO presets, and the errors that reach the user."""
import json
import os
import shutil

import numpy as np
import pytest

import train
import val
from lib.config import parse_image_size, preset_config
from lib.core.run import default_run_name
from tests.helpers import CPU, COCO_MINI, MINI_VAL_JSON, MMPOSE_COCO, pycocotools_stats, require, run_val

TEST_DET_JSON = os.path.join(MMPOSE_COCO, 'test_coco_det_AP_H_56.json')
STATS = ['AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)', 'AR', 'AR .5', 'AR .75', 'AR (M)', 'AR (L)']


def parse_eval_line(line: str) -> dict:
    assert line.startswith('[EVAL] AP=')
    return {key: float(value) for key, value in (item.split('=') for item in line[len('[EVAL] '):].split())}


@pytest.fixture(scope='module')
def coco_run(tmp_path_factory, pycocotools):
    """pose_resnet_18 at 96x64 (H x W), 2 iterations on coco_mini train2017, validated on val2017 (GT boxes)."""
    output = tmp_path_factory.mktemp('coco_train')
    assert train.main(['--dataset', 'coco', '--model', 'pose_resnet_18', '--image_size', '96x64',
                       '--dataset_root', require(COCO_MINI), '--output_dir', str(output), '--batch_size', '4',
                       '--max_iters', '2', '--val_batch_size', '16', '--log_every', '1', *CPU]) == 0
    return output / 'coco_pose_resnet_18_96x64'


@pytest.fixture(scope='module')
def det_root(tmp_path_factory):
    """mmpose's test_coco.json as val2017 of a COCO root, with its 4 images."""
    root = tmp_path_factory.mktemp('coco_det')
    (root / 'annotations').mkdir()
    (root / 'val2017').mkdir()
    shutil.copy(require(os.path.join(MMPOSE_COCO, 'test_coco.json')),
                root / 'annotations' / 'person_keypoints_val2017.json')
    for name in os.listdir(MMPOSE_COCO):
        if name.endswith('.jpg'):
            shutil.copy(os.path.join(MMPOSE_COCO, name), root / 'val2017' / name)
    return root


# --- training -------------------------------------------------------------------------------------------------

def test_coco_run_writes_checkpoint_best_model_by_ap_and_the_coco_table(coco_run):
    for name in ('checkpoint.pdparams', 'best_model/model.pdparams', 'config.json', 'train.log',
                 'last_eval/results.json', 'last_eval/keypoints_val2017_results.json'):
        assert (coco_run / name).is_file(), name
    config = json.load(open(coco_run / 'config.json'))
    assert config['data']['dataset'] == 'coco' and config['data']['input_wh'] == [64, 96]
    assert config['data']['heatmap_wh'] == [16, 24] and config['model']['num_joints'] == 17
    assert (config['data']['train_set'], config['data']['valid_set']) == ('train2017', 'val2017')
    log = open(coco_run / 'train.log').read()
    assert 'Validation (COCO keypoint AP, GT boxes, flip test on):' in log
    assert '| Arch | ' + ' | '.join(STATS) + ' |' in log
    assert 'New best AP ' in log and 'Done: 2 iterations, best AP ' in log
    import paddle
    state = paddle.load(str(coco_run / 'checkpoint.pdparams'))['train_state']
    row = state['history'][-1]
    assert set(STATS) <= set(row) and state['best_mean'] == row['AP'] and state['best_epoch'] == 1
    assert json.load(open(coco_run / 'last_eval' / 'results.json'))['metrics']['AP'] == row['AP']


def test_coco_run_resumes(coco_run, tmp_path):
    import paddle
    run = tmp_path / 'run'
    shutil.copytree(coco_run, run)
    assert train.main(['--resume', str(run), '--max_iters', '3']) == 0
    state = paddle.load(str(run / 'checkpoint.pdparams'))['train_state']
    assert state['global_step'] == 3 and 'AP' in state['history'][-1]
    assert 'Resumed at epoch 1, iteration 2 (step 2, best AP ' in open(run / 'train.log').read()


# --- val.py ---------------------------------------------------------------------------------------------------

def test_val_gt_boxes_reproduces_the_last_validation(coco_run, tmp_path, capsys):
    # The dataset, model and input size come from the run's config.json.
    lines = run_val(capsys, '--pretrained_model', str(coco_run / 'checkpoint.pdparams'), '--use_gt_bbox',
                    '--dataset_root', COCO_MINI, '--output_dir', str(tmp_path), *CPU)
    assert lines[0] == '| Arch | ' + ' | '.join(STATS) + ' |'
    assert lines[2].startswith('| pose_resnet_18_96x64 | ')
    expected = json.load(open(coco_run / 'last_eval' / 'results.json'))['metrics']
    results = json.load(open(tmp_path / 'results.json'))
    assert results['metrics'] == pytest.approx(expected, abs=1e-12)
    assert parse_eval_line(lines[-1]) == pytest.approx({k.replace(' ', ''): v for k, v in expected.items()}, abs=1e-6)
    assert results['test']['use_gt_bbox'] is True and results['data']['input_wh'] == [64, 96]
    ours = json.load(open(tmp_path / 'keypoints_val2017_results.json'))
    theirs = json.load(open(coco_run / 'last_eval' / 'keypoints_val2017_results.json'))
    assert len(ours) == len(theirs) == 68       # 68 people, no two of them overlap by OKS > 0.9
    np.testing.assert_allclose([p['keypoints'] for p in ours], [p['keypoints'] for p in theirs], atol=1e-4)


def test_val_with_detected_boxes_end_to_end(coco_run, det_root, tmp_path, capsys):
    lines = run_val(capsys, '--pretrained_model', str(coco_run / 'best_model' / 'model.pdparams'),
                    '--dataset_root', str(det_root), '--det_file', require(TEST_DET_JSON), '--image_thre', '0.0',
                    '--output_dir', str(tmp_path), *CPU)
    assert lines[-1].startswith('[EVAL] AP=') and lines[-2].startswith('Wrote ')
    results_json = str(tmp_path / 'keypoints_val2017_results.json')
    poses = json.load(open(results_json))
    assert 0 < len(poses) <= 118                 # 118 boxes of category 1 with score >= 0, fewer after OKS-NMS
    assert {p['image_id'] for p in poses} <= {785, 40083, 196141, 197388}
    assert all(len(p['keypoints']) == 51 and p['category_id'] == 1 for p in poses)
    gt_json = str(det_root / 'annotations' / 'person_keypoints_val2017.json')
    stats = pycocotools_stats(gt_json, results_json)              # parseable by pycocotools, same numbers
    metrics = json.load(open(tmp_path / 'results.json'))
    assert list(metrics['metrics'].values()) == pytest.approx(stats, abs=1e-12)
    assert metrics['test']['use_gt_bbox'] is False and metrics['test']['det_file'] == TEST_DET_JSON


def test_val_oracle_gives_the_library_ap_and_equals_pycocotools(tmp_path, capsys, pycocotools):
    """Ground truth through the target pipeline at 256x192, then rescoring, OKS-NMS and COCOeval: AP 0.98199
    (tests/test_coco.py measures the same through the library)."""
    lines = run_val(capsys, '--dataset', 'coco', '--oracle', '--image_size', '256x192',
                    '--dataset_root', require(COCO_MINI), '--output_dir', str(tmp_path))
    metrics = json.load(open(tmp_path / 'results.json'))['metrics']
    assert metrics['AP'] == pytest.approx(0.98199, abs=1e-4) and metrics['AP .5'] == pytest.approx(1.0)
    assert parse_eval_line(lines[-1])['AP'] == pytest.approx(metrics['AP'], abs=1e-6)
    assert lines[2].startswith('| oracle_256x192 | ')
    stats = pycocotools_stats(MINI_VAL_JSON, str(tmp_path / 'keypoints_val2017_results.json'))
    assert list(metrics.values()) == stats


def test_val_preds_file_scores_a_results_json_as_it_is(tmp_path, capsys, pycocotools):
    assert val.main(['--dataset', 'coco', '--oracle', '--dataset_root', require(COCO_MINI),
                     '--output_dir', str(tmp_path / 'oracle')]) == 0
    capsys.readouterr()
    lines = run_val(capsys, '--dataset', 'coco', '--preds_file',
                    str(tmp_path / 'oracle' / 'keypoints_val2017_results.json'), '--dataset_root', COCO_MINI,
                    '--output_dir', str(tmp_path / 'again'))
    expected = json.load(open(tmp_path / 'oracle' / 'results.json'))['metrics']
    assert json.load(open(tmp_path / 'again' / 'results.json'))['metrics'] == expected
    assert lines[-1].startswith('[EVAL] AP=0.98')


# --- errors through val.py -----------------------------------------------------------------------------------

def test_val_missing_coco_files(coco_run, tmp_path):
    with pytest.raises(FileNotFoundError, match=r'person_keypoints_val2017\.json does not exist'):
        val.main(['--pretrained_model', str(coco_run / 'checkpoint.pdparams'), '--dataset_root', str(tmp_path),
                  '--output_dir', str(tmp_path / 'out'), *CPU])
    with pytest.raises(FileNotFoundError, match='detection file not found: .*none.json'):
        val.main(['--pretrained_model', str(coco_run / 'checkpoint.pdparams'), '--dataset_root', COCO_MINI,
                  '--det_file', str(tmp_path / 'none.json'), '--output_dir', str(tmp_path / 'out'), *CPU])
    with pytest.raises(FileNotFoundError, match='weights file not found'):
        val.main(['--dataset', 'coco', '--pretrained_model', str(tmp_path / 'none.pdparams'),
                  '--dataset_root', COCO_MINI, '--output_dir', str(tmp_path / 'out'), *CPU])


def test_val_detections_of_unknown_images_or_none_at_all(coco_run, det_root, tmp_path):
    weights = str(coco_run / 'checkpoint.pdparams')
    unknown = tmp_path / 'unknown.json'
    unknown.write_text(json.dumps([{'image_id': 785, 'category_id': 1, 'bbox': [1, 2, 30, 40], 'score': 0.9},
                                   {'image_id': 123456, 'category_id': 1, 'bbox': [1, 2, 30, 40], 'score': 0.9}]))
    with pytest.raises(ValueError, match=r'not in the val2017 annotation file \(first: \[123456\]\)'):
        val.main(['--pretrained_model', weights, '--dataset_root', str(det_root), '--det_file', str(unknown), *CPU])
    empty = tmp_path / 'empty.json'
    empty.write_text('[]')
    with pytest.raises(ValueError, match='no person box has score >= image_thre 0.0'):
        val.main(['--pretrained_model', weights, '--dataset_root', str(det_root), '--det_file', str(empty), *CPU])
    with pytest.raises(ValueError, match='no person box has score >= image_thre 1.5'):
        val.main(['--pretrained_model', weights, '--dataset_root', str(det_root), '--det_file', TEST_DET_JSON,
                  '--image_thre', '1.5', *CPU])


def test_val_refuses_mismatched_datasets_and_flags(coco_run, det_root, tmp_path, capsys):
    with pytest.raises(ValueError, match=r'the model predicts 17 joints \(from .*config.json\), but mpii has 16'):
        val.main(['--dataset', 'mpii', '--pretrained_model', str(coco_run / 'checkpoint.pdparams'), *CPU])
    with pytest.raises(ValueError, match='--det_file applies to COCO only'):
        val.main(['--dataset', 'mpii', '--pretrained_model', 'x.pdparams', '--det_file', TEST_DET_JSON])
    for argv in (['--dataset', 'coco', '--pretrained_model', 'x', '--use_gt_bbox', '--det_file', 'd.json'],
                 ['--dataset', 'coco', '--oracle', '--det_file', 'd.json'],
                 ['--dataset', 'coco', '--oracle', '--image_size', '256x'],
                 ['--dataset', 'coco', '--oracle', '--image_size', '0x192']):
        with pytest.raises(SystemExit):
            val.parse_args(argv)
    assert 'HEIGHTxWIDTH' in capsys.readouterr().err
    # An empty results file: the library's error, through val.py.
    (tmp_path / 'empty.json').write_text('[]')
    with pytest.raises(ValueError, match='holds no predictions'):
        val.main(['--dataset', 'coco', '--preds_file', str(tmp_path / 'empty.json'), '--dataset_root', str(det_root),
                  '--output_dir', str(tmp_path / 'out')])


# --- presets and flags ---------------------------------------------------------------------------------------

def test_image_size_is_height_x_width():
    assert parse_image_size('256x192') == (192, 256) and parse_image_size('256') == (256, 256)
    assert parse_image_size(384) == (384, 384)
    with pytest.raises(ValueError, match='HEIGHTxWIDTH'):
        parse_image_size('256x192x3')


@pytest.mark.parametrize('model', ['pose_resnet_18', 'pose_resnet_50', 'pose_resnet_152'])
def test_coco_pose_resnet_preset_is_hrnets_yaml(model):
    config = train.build_config(train.parse_args(['--dataset', 'coco', '--model', model]))
    for key, value in {'optimizer': 'adam', 'lr': 1e-3, 'weight_decay': 0.0, 'epochs': 140, 'lr_steps': (90, 120),
                       'lr_gamma': 0.1, 'batch_size': 32, 'warmup_iters': 0}.items():
        assert getattr(config, key) == value, key
    data = config.data
    assert (data.dataset, data.dataset_root, data.train_set, data.valid_set) == ('coco', 'data/coco', 'train2017',
                                                                                 'val2017')
    assert (data.input_wh, data.heatmap_wh, data.sigma) == ((192, 256), (48, 64), 2.0)
    assert (data.scale_factor, data.rotation_factor, data.flip, data.prob_half_body) == (0.3, 40.0, True, 0.0)
    assert data.color_rgb is False and data.use_joints_weight is False and config.model.num_joints == 17
    test = config.test
    assert (test.flip_test, test.shift_heatmap, test.use_gt_bbox, test.image_thre, test.in_vis_thre,
            test.oks_thre) == (True, True, True, 0.0, 0.2, 0.9)
    assert default_run_name(config) == f'coco_{model}_256x192'
    large = train.build_config(train.parse_args(['--dataset', 'coco', '--model', model, '--image_size', '384x288']))
    assert (large.data.input_wh, large.data.heatmap_wh, large.data.sigma) == ((288, 384), (72, 96), 3.0)
    assert default_run_name(large) == f'coco_{model}_384x288'


def test_coco_hourglass_presets_and_flags():
    hg52 = train.build_config(train.parse_args(['--dataset', 'coco', '--model', 'hourglass52']))
    assert (hg52.optimizer, hg52.lr, hg52.warmup_iters, hg52.epochs, hg52.lr_steps, hg52.batch_size) == (
        'adam', 5e-4, 500, 210, (170, 200), 32)
    assert (hg52.data.input_wh, hg52.data.prob_half_body, hg52.data.num_joints_half_body) == ((256, 256), 0.3, 8)
    assert (hg52.data.scale_factor, hg52.data.rotation_factor, hg52.data.color_rgb) == (0.5, 40.0, True)
    newell = train.build_config(train.parse_args(['--dataset', 'coco']))
    assert (newell.model.name, newell.model.num_stacks, newell.model.num_joints, newell.optimizer) == (
        'hourglass', 8, 17, 'rmsprop')
    assert default_run_name(newell) == 'coco_hourglass8_256x192'
    flags = train.build_config(train.parse_args(['--dataset', 'coco', '--model', 'pose_resnet_50', '--prob_half_body',
                                                 '0.3', '--num_joints_half_body', '6', '--use_joints_weight']))
    assert (flags.data.prob_half_body, flags.data.num_joints_half_body, flags.data.use_joints_weight) == (0.3, 6, True)
    off = train.build_config(train.parse_args(['--dataset', 'coco', '--model', 'hourglass52', '--no-use_joints_weight',
                                               '--prob_half_body', '0']))
    assert off.data.use_joints_weight is False and off.data.prob_half_body == 0.0
    mpii = train.build_config(train.parse_args([]))
    assert (mpii.data.dataset, mpii.data.prob_half_body, mpii.model.num_joints) == ('mpii', 0.0, 16)
    assert default_run_name(mpii) == 'mpii_hourglass8_256x256'


def test_input_size_is_checked_on_both_sides(tmp_path):
    with pytest.raises(ValueError, match=r'hourglass52 needs .* multiples of 128; received 256x192 \(from the flags\)'):
        train.main(['--dataset', 'coco', '--model', 'hourglass52', '--image_size', '256x192',
                    '--output_dir', str(tmp_path)])
    with pytest.raises(ValueError, match=r'pose_resnet_18 needs .* multiples of 32; received 96x80'):
        train.main(['--dataset', 'coco', '--model', 'pose_resnet_18', '--image_size', '96x80',
                    '--output_dir', str(tmp_path)])
    with pytest.raises(ValueError, match=r'received 100x64'):
        train.main(['--dataset', 'coco', '--model', 'pose_resnet_18', '--image_size', '100x64',
                    '--output_dir', str(tmp_path)])


def test_coco_joint_weights_reach_the_targets():
    import dataclasses
    from lib.datasets.skeletons import COCO
    from lib.datasets.loaders import build_dataset
    data = preset_config('pose_resnet_18', require(COCO_MINI), 'coco', (64, 96)).data
    plain = build_dataset(data, 'val2017', is_train=False)
    weighted = build_dataset(dataclasses.replace(data, use_joints_weight=True), 'val2017', is_train=False)
    assert len(plain) == 68 and plain.layout.name == 'coco'
    a, b = plain[0], weighted[0]
    assert a['image'].shape == (3, 96, 64) and a['target'].shape == (17, 24, 16)
    assert a['target_weight'].sum() > 0
    np.testing.assert_allclose(b['target_weight'], a['target_weight'] * COCO.joints_weight_array, rtol=1e-6)
