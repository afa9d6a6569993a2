"""val.py and train.py command-line fixes of issue 13: sizes checked before any work, errors that say where a
value came from, help texts with defaults, an intact --help example, the oracle without images/."""
import os
import shutil

import pytest

import train
import val
from tests.helpers import CPU, MINI_VAL_JSON, require


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(16, 8, 1)


@pytest.fixture(scope='module')
def hourglass_weights(tiny_run):
    """A one-step hourglass run: best_model/model.pdparams with the run's config.json beside its folder."""
    return os.path.join(tiny_run, 'best_model', 'model.pdparams')


def evaluate(weights, data_root, tmp_path, *extra):
    return val.main(['--pretrained_model', weights, '--dataset_root', data_root, '--output_dir', str(tmp_path),
                     *CPU, *extra])


def test_val_refuses_an_input_size_the_model_cannot_take(hourglass_weights, data_root, tmp_path):
    with pytest.raises(ValueError, match=r'hourglass needs input sides that are multiples of 64; received '
                                         r'300x300 \(from the flags\).*--image_size 320'):
        evaluate(hourglass_weights, data_root, tmp_path, '--image_size', '300')


def test_an_option_from_the_saved_config_is_not_blamed_on_a_flag(hourglass_weights, data_root, tmp_path):
    with pytest.raises(ValueError) as error:
        evaluate(hourglass_weights, data_root, tmp_path, '--model', 'pose_resnet_50')
    message = str(error.value)
    assert 'Remove --num_stacks' not in message
    assert 'num_stacks=1 was not given on the command line: it comes from ' in message
    assert os.path.join('run', 'config.json') in message
    assert 'Drop --model pose_resnet_50 to use the model described there' in message


def test_an_option_given_as_a_flag_is_named_as_such(hourglass_weights, data_root, tmp_path):
    with pytest.raises(ValueError, match=r'pose_resnet_50 has no option num_stacks \(received 2\).*'
                                         r'Remove --num_stacks\.'):
        evaluate(hourglass_weights, data_root, tmp_path, '--model', 'pose_resnet_50', '--num_stacks', '2')


def test_val_help_gives_the_loader_and_device_flags_a_meaning_and_a_default(capsys):
    with pytest.raises(SystemExit):
        val.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for flag, words in (('--val_batch_size VAL_BATCH_SIZE', 'person crops per forward pass when validating or '
                         'predicting (default 32)'),
                        ('--workers WORKERS', 'data loading processes (0 = in the main process) (default 4'),
                        ('--device {auto,cpu,gpu}', 'auto: the GPU when')):
        assert f'{flag} {words}' in text
    assert 'else the CPU (default auto)' in text


def test_train_help_shows_the_multi_line_example_as_written(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    assert ('--dataset_root data/coco \\\n        --pretrained_backbone resnet50.pdparams\n'
            in capsys.readouterr().out)


def test_the_oracle_reads_no_image(data_root, tmp_path, capsys):
    root = tmp_path / 'annotations_only'
    shutil.copytree(os.path.join(data_root, 'annot'), root / 'annot')
    assert val.main(['--oracle', '--image_size', '64', '--dataset_root', str(root),
                     '--output_dir', str(tmp_path / 'out')]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith('[EVAL] ')


def test_coco_oracle_and_preds_file_read_no_image(pycocotools, tmp_path, capsys):
    root = tmp_path / 'coco_annotations_only'
    shutil.copytree(os.path.dirname(require(MINI_VAL_JSON)), root / 'annotations')
    assert val.main(['--dataset', 'coco', '--oracle', '--image_size', '256x192', '--dataset_root', str(root),
                     '--output_dir', str(tmp_path / 'oracle')]) == 0
    oracle_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert oracle_line.startswith('[EVAL] AP=')
    assert val.main(['--dataset', 'coco', '--preds_file', str(tmp_path / 'oracle' / 'keypoints_val2017_results.json'),
                     '--dataset_root', str(root), '--output_dir', str(tmp_path / 'preds')]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == oracle_line
