"""Values and file names that come from config.json, inference.json, flags or --set are checked once, in
lib/config.resolve_config (VALUE_RULES) and lib/inference/conventions.check_file_names, with one message
naming the key, the value, where it came from and what is expected."""
import json

import pytest

import train
import val
from lib.config import VALUE_RULES, resolve_config
from lib.inference.conventions import read_inference_config, weights_config


def resolve_for(path: str):
    """The configuration that goes with the weights or exported folder at `path`, as the scripts resolve it."""
    return resolve_config(run_config=weights_config(path))


@pytest.mark.parametrize('key, value', [
    ('lr', '0'), ('lr', 'nan'), ('lr', '-1e-3'), ('epochs', '0'), ('batch_size', '0'), ('workers', '-1'),
    ('eval_every', '0'), ('log_every', '0'), ('lr_gamma', 'inf'), ('weight_decay', '-0.1'), ('seed', '-1'),
    ('data.sigma', '0'), ('data.sigma', 'nan'), ('data.std', '0.2,0,0.2'), ('data.mean', 'nan,0,0'),
    ('data.input_wh', '0,256'), ('data.rotation_prob', '1.5'), ('model.num_joints', '0'),
    ('test.batch_size', '0'), ('test.oks_thre', '1.5'), ('test.in_vis_thre', 'inf'), ('test.image_thre', 'nan'),
])
def test_out_of_range_values_are_refused_with_their_source(key, value):
    with pytest.raises(ValueError, match=rf'^{key}=.* \(from --set\) is out of range; expected .*--set {key}=<value>'):
        resolve_config(sets=[f'{key}={value}'])


def test_every_preset_passes_the_rules():
    from lib.config import DATASETS, preset_names
    for dataset in DATASETS:
        for model in preset_names(dataset):
            resolve_config({'data.dataset': dataset, 'model.name': model})
    assert len(VALUE_RULES) > 20


def test_train_and_val_flags_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r'^lr=0.0 \(from the flags\) is out of range; expected a finite number > 0'):
        train.main(['--dataset_root', str(tmp_path), '--lr', '0', '--print_config'])
    with pytest.raises(ValueError, match=r'^workers=-2 \(from the flags\)'):
        train.main(['--dataset_root', str(tmp_path), '--workers', '-2', '--print_config'])
    with pytest.raises(ValueError, match=r'^data.sigma=-1.0 \(from the flags\)'):
        val.main(['--oracle', '--dataset_root', str(tmp_path), '--sigma', '-1', '--print_config'])


def write_run(folder, config: dict) -> str:
    folder.mkdir(exist_ok=True)
    (folder / 'config.json').write_text(json.dumps(config))
    return str(folder / 'model.pdparams')


def test_config_json_beside_weights_is_checked(tmp_path):
    weights = write_run(tmp_path / 'run', {'data': {'std': [0.229, 0.0, 0.225]}})
    with pytest.raises(ValueError, match=r"data.std=\[0.229, 0.0, 0.225\] \(from .*run/config.json\) is out of "
                                         r'range; expected three finite numbers, none 0'):
        resolve_for(weights)
    weights = write_run(tmp_path / 'run', {'model': {'name': 'os.system'}})
    with pytest.raises(ValueError, match=r"no mpii preset for model 'os.system'.*model.name came from "
                                         r'.*run/config.json'):
        resolve_for(weights)
    weights = write_run(tmp_path / 'run', {'data': {'input_wh': [256, -256]}})
    with pytest.raises(ValueError, match=r'data.input_wh=\[256, -256\] \(from .*run/config.json\)'):
        resolve_for(weights)


def write_export(folder, files=None, **sections) -> str:
    folder.mkdir(exist_ok=True)
    config = {'model': {}, 'data': {}, 'test': {}, **sections}
    if files is not None:
        config['files'] = files
    (folder / 'inference.json').write_text(json.dumps(config))
    return str(folder)


@pytest.mark.parametrize('name', ['/etc/passwd', '../model.pdiparams', 'sub/../../x', '..\\x', 'C:x', '', 3, None])
def test_inference_json_names_only_files_of_its_folder(tmp_path, name):
    model_dir = write_export(tmp_path / 'export', files={'paddle_model': 'model.json', 'paddle_params': name})
    with pytest.raises(ValueError, match=r'files.paddle_params is .*; expected the name of a file inside .*export'):
        read_inference_config(model_dir)


def test_inference_json_file_names_and_values_that_are_fine_or_not(tmp_path):
    model_dir = write_export(tmp_path / 'export', files={'paddle_model': 'model.json', 'onnx': None,
                                                           'paddle_params': 'sub/model.pdiparams'})
    assert read_inference_config(model_dir)['files']['paddle_params'] == 'sub/model.pdiparams'
    with pytest.raises(ValueError, match=r'"files" is .*; expected a dict'):
        read_inference_config(write_export(tmp_path / 'export', files=['model.json']))
    write_export(tmp_path / 'export', data={'sigma': 0.0})
    with pytest.raises(ValueError, match=r'data.sigma=0.0 \(from .*export/inference.json\) is out of range'):
        resolve_for(str(tmp_path / 'export'))


def test_script_only_flags_are_checked(capsys):
    import infer
    with pytest.raises(ValueError, match=r'^workers=-1 \(from the flags\) is out of range; expected an integer >= 0'):
        val.main(['--oracle', '--workers', '-1'])
    with pytest.raises(SystemExit):
        infer.parse_args(['--input', 'x.jpg', '--pretrained_model', 'w.pdparams', '--det_thr', 'nan'])
    assert '--det_thr must be a score threshold in [0, 1], e.g. 0.5; received nan' in capsys.readouterr().err
