"""lib/config.py: the presets as files under configs/, and the one resolution of a run's configuration."""
import json

import pytest

import train
import val
from lib import config as config_module
from lib.config import (TrainConfig, dump_yaml, load_preset, preset_config, preset_names, read_config_file,
                        resolve_config, to_dict)

# Frozen from the Python presets that configs/*.yaml replaced (the commit before this file's present form
# compared the files with them at every input size): the preset of (dataset, model) at its default size.
MPII_HOURGLASS = {
    'data': {'dataset_root': 'data/mpii', 'dataset': 'mpii', 'train_set': 'train', 'valid_set': 'valid',
             'input_wh': (256, 256), 'heatmap_wh': (64, 64), 'sigma': 2.0, 'scale_factor': 0.25,
             'rotation_factor': 30.0, 'rotation_prob': 0.6, 'flip': True, 'prob_half_body': 0.0,
             'num_joints_half_body': 8, 'use_joints_weight': False, 'color_rgb': True,
             'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225), 'reduced_decode': False,
             'udp': False, 'unbiased_encoding': False},
    'model': {'name': 'hourglass', 'num_stacks': 8, 'num_features': 256, 'num_joints': 16},
    'test': {'flip_test': True, 'shift_heatmap': True, 'post_process': True, 'decode_offset': 0.0, 'decode': 'quarter',
             'blur_kernel': 0, 'batch_size': 32,
             'use_gt_bbox': True, 'det_file': '', 'image_thre': 0.0, 'in_vis_thre': 0.2, 'oks_thre': 0.9},
    'output_dir': 'output', 'epochs': 140, 'batch_size': 16, 'optimizer': 'rmsprop', 'lr': 0.00025,
    'lr_steps': (90, 120), 'lr_gamma': 0.1, 'warmup_iters': 0, 'warmup_ratio': 0.001, 'weight_decay': 0.0,
    'pretrained_backbone': '', 'init_weights': '', 'amp': 'off', 'amp_level': 'O1', 'max_nonfinite': 20, 'debug_images': (),
    'use_vdl': False, 'stack_loss': 'sum', 'workers': 4, 'seed': 0, 'max_iters': 0, 'eval_every': 1,
    'log_every': 50, 'log_seconds': 60.0, 'device': 'auto', 'deterministic': False}
_HG52 = {'data': {'scale_factor': 0.5, 'rotation_factor': 40.0}, 'epochs': 210, 'batch_size': 64,
         'optimizer': 'adam', 'lr': 0.0005, 'lr_steps': (170, 200), 'warmup_iters': 500}
_RESNET = {'data': {'color_rgb': False}, 'batch_size': 32, 'optimizer': 'adam', 'lr': 0.001}
_COCO = {'data': {'dataset_root': 'data/coco', 'dataset': 'coco', 'train_set': 'train2017', 'valid_set': 'val2017'},
         'model': {'num_joints': 17}}
_COCO_256x192 = {'data': {'input_wh': (192, 256), 'heatmap_wh': (48, 64), 'scale_factor': 0.3,
                          'rotation_factor': 40.0}}
# Differences from MPII_HOURGLASS, model.name aside.
DIFFERENCES = {
    ('mpii', 'hourglass'): [],
    **{('mpii', name): [_HG52, {'model': {'num_stacks': 0, 'num_features': 0}}]
       for name in ('hourglass52', 'hourglass104')},
    **{('mpii', f'pose_resnet_{d}'): [_RESNET, {'model': {'num_stacks': 0, 'num_features': 0}}]
       for d in (18, 34, 50, 101, 152)},
    ('coco', 'hourglass'): [_COCO, _COCO_256x192],
    **{('coco', name): [_COCO, _HG52, {'batch_size': 32, 'data': {'prob_half_body': 0.3},
                                       'model': {'num_stacks': 0, 'num_features': 0}}]
       for name in ('hourglass52', 'hourglass104')},
    **{('coco', f'pose_resnet_{d}'): [_COCO, _COCO_256x192, _RESNET, {'model': {'num_stacks': 0, 'num_features': 0}}]
       for d in (18, 34, 50, 101, 152)},
}


def _merged(*parts):
    out = {}
    for part in parts:
        for key, value in part.items():
            out[key] = _merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.mark.parametrize('dataset, model', sorted(DIFFERENCES))
def test_every_preset_file_equals_the_frozen_presets(dataset, model):
    expected = _merged(MPII_HOURGLASS, *DIFFERENCES[dataset, model], {'model': {'name': model}})
    assert to_dict(load_preset(dataset, model)) == expected
    assert to_dict(preset_config(model, 'elsewhere', dataset))['data']['dataset_root'] == 'elsewhere'
    # the file, as a user copies it, is a --config that gives the same configuration
    path = config_module.preset_path(dataset, model)
    assert to_dict(resolve_config(config_file=path)) == expected


def test_presets_exist_for_every_model_on_both_datasets():
    from lib.models import MODELS
    assert preset_names('mpii') == preset_names('coco')
    assert set(preset_names('mpii')) <= set(MODELS)
    assert len(DIFFERENCES) == 2 * len(preset_names('mpii'))


def test_size_rule_heatmaps_and_coco_sigma():
    coco = load_preset('coco', 'pose_resnet_50', (288, 384))
    assert (coco.data.input_wh, coco.data.heatmap_wh, coco.data.sigma) == ((288, 384), (72, 96), 3.0)
    mpii = load_preset('mpii', 'hourglass', (384, 384))
    assert (mpii.data.heatmap_wh, mpii.data.sigma) == ((96, 96), 2.0)


def test_precedence_preset_run_config_file_flags_set(tmp_path):
    run = {'data': {'sigma': 1.0, 'scale_factor': 0.1, 'rotation_factor': 10.0}, 'lr': 0.1, 'epochs': 5,
           'batch_size': 3}
    file = tmp_path / 'mine.yaml'
    file.write_text('data: {scale_factor: 0.2, rotation_factor: 20}\nlr: 0.2\nepochs: 6\n')
    config = resolve_config({'lr': 0.3, 'epochs': None, 'data.rotation_factor': 30.5}, run_config=run,
                            config_file=str(file), sets=['lr=5e-4'])
    assert config.optimizer == 'rmsprop' and config.seed == 0               # preset
    assert config.batch_size == 3 and config.data.sigma == 1.0              # run config over the preset
    assert config.data.scale_factor == 0.2 and config.epochs == 6           # file over the run config
    assert config.data.rotation_factor == 30.5                              # flags over the file
    assert config.lr == 5e-4                                                # --set last
    # the dataset, model and input size of the preset come from the layers
    coco = resolve_config(sets=['data.dataset=coco', 'model.name=pose_resnet_50', 'data.input_wh=288,384'])
    assert (coco.optimizer, coco.data.heatmap_wh, coco.data.sigma, coco.model.num_joints) == (
        'adam', (72, 96), 3.0, 17)


def test_set_values_are_typed_and_checked():
    config = resolve_config(sets=['data.flip=false', 'lr_steps=10,20,30', 'data.mean=[0, 0.5, 1]', 'seed=3',
                                  'test.det_file=boxes.json', 'data.sigma=3'])
    assert config.data.flip is False and config.lr_steps == (10, 20, 30) and config.data.mean == (0.0, 0.5, 1.0)
    assert config.seed == 3 and config.test.det_file == 'boxes.json' and config.data.sigma == 3.0
    with pytest.raises(ValueError, match=r"unknown config key 'data.sigmaa' \(from --set\); section data has the "
                                         r"keys \[.*'data.sigma'"):
        resolve_config(sets=['data.sigmaa=3'])
    with pytest.raises(ValueError, match=r"unknown config key 'learning_rate'.*'lr'"):
        resolve_config(sets=['learning_rate=3'])
    with pytest.raises(TypeError, match=r"seed='1.5' \(from --set\) is not int; expected int, e.g. 3"):
        resolve_config(sets=['seed=1.5'])
    with pytest.raises(TypeError, match=r"data.flip='maybe' .* not bool"):
        resolve_config(sets=['data.flip=maybe'])
    with pytest.raises(TypeError, match=r"data.input_wh='256' .* a list of 2 ints"):
        resolve_config(sets=['data.input_wh=256'])
    with pytest.raises(TypeError, match=r'data \(from --set\) is a section'):
        resolve_config(sets=['data=3'])
    with pytest.raises(ValueError, match='is not key=value'):
        resolve_config(sets=['lr'])
    with pytest.raises(ValueError, match=r"no mpii preset for model 'resnet'; presets exist for \["):
        resolve_config(sets=['model.name=resnet'])


def test_config_files_are_checked(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('data:\n  sigma: two\n')
    with pytest.raises(TypeError, match=rf'data.sigma=.two. \(from {bad}\) is not float'):
        resolve_config(config_file=str(bad))
    (tmp_path / 'list.yaml').write_text('- 1\n')
    with pytest.raises(ValueError, match='holds a YAML list; expected a configuration tree'):
        read_config_file(str(tmp_path / 'list.yaml'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        resolve_config(config_file=str(tmp_path / 'none.yaml'))


def test_train_flags_config_file_and_print_config(tmp_path, capsys):
    file = tmp_path / 'mine.yaml'
    file.write_text(dump_yaml({'model': {'name': 'pose_resnet_18'}, 'data': {'dataset': 'coco', 'sigma': 2.5},
                               'lr': 0.01}))
    args = ['--config', str(file), '--image_size', '384x288', '--lr', '0.02', '--set', 'epochs=7', '--no_flip']
    config = train.build_config(train.parse_args(args))
    assert (config.model.name, config.data.dataset, config.data.input_wh, config.data.heatmap_wh) == (
        'pose_resnet_18', 'coco', (288, 384), (72, 96))
    assert (config.data.sigma, config.lr, config.epochs, config.data.flip, config.optimizer) == (
        2.5, 0.02, 7, False, 'adam')
    assert train.main(args + ['--print_config']) == 0
    printed = capsys.readouterr().out
    assert TrainConfig(**{**to_dict(resolve_config(config_file=str(file))), 'data': config.data,
                          'model': config.model, 'test': config.test}) is not None
    assert to_dict(resolve_config(run_config=__import__('yaml').safe_load(printed))) == to_dict(config)


def test_help_shows_the_chosen_presets_defaults(capsys):
    for argv, expected in ((['--help'], ['(default 16)', '(default 0.00025)', '(default rmsprop)']),
                           (['--model', 'pose_resnet_50', '--help'], ['(default 32)', '(default 0.001)',
                                                                      '(default adam)']),
                           (['--dataset', 'coco', '--model', 'hourglass52', '--help'],
                            ['(default 32)', '(default 0.0005)', '(default 210)', '(default 256x256)'])):
        with pytest.raises(SystemExit):
            train.parse_args(argv)
        text = ' '.join(capsys.readouterr().out.split())
        for piece in expected:
            assert piece in text, (argv, piece)
        assert 'Defaults shown are those of the preset configs/' in text


def test_resume_and_val_resolve_through_the_same_function(tmp_path, monkeypatch):
    calls = []
    real = config_module.resolve_config

    def spy(*args, **kwargs):
        calls.append(kwargs.get('run_config'))
        return real(*args, **kwargs)
    monkeypatch.setattr(config_module, 'resolve_config', spy)
    monkeypatch.setattr(train, 'resolve_config', spy)
    monkeypatch.setattr(val, 'resolve_config', spy)
    import lib.core.run as run
    monkeypatch.setattr(run, 'resolve_config', spy)

    saved = to_dict(resolve_config(sets=['model.num_stacks=1', 'model.num_features=16', 'data.input_wh=64,64']))
    resumed = run.resumed_config({'config': saved}, 'ckpt', {'epochs': 3, 'lr': None})
    assert resumed.epochs == 3 and resumed.lr == 0.00025 and resumed.model.num_stacks == 1
    assert resumed.source_of('epochs') == 'the flags' and resumed.source_of('lr') == 'ckpt'

    (tmp_path / 'config.json').write_text(json.dumps(saved))
    config = val.build_config(val.parse_args(['--pretrained_model', str(tmp_path / 'model.pdparams')]))
    assert (config.model.num_stacks, config.data.input_wh, config.data.dataset_root) == (1, (64, 64), 'data/mpii')
    assert config.source_of('model.num_stacks').startswith(str(tmp_path / 'config.json'))
    # one call for the resumed run (its checkpoint's config), one for val.py (the config.json's conventions)
    assert [c['model']['num_stacks'] for c in calls] == [1, 1] and len(calls[0]) > len(calls[1])


@pytest.mark.parametrize('given', [['--lr', '1e-4'], ['--set', 'lr=1e-4'], ['--image_size', '128'],
                                   ['--set', 'data.input_wh=128,128']])
def test_resume_refuses_a_recipe_change_as_a_flag_or_as_set_alike(given):
    """Issue 19: --lr on --resume was dropped without a word while --set lr was refused; now both are refused,
    with the same words, and the keys a resume may change are accepted both ways."""
    import lib.core.run as run
    saved = to_dict(resolve_config(sets=['model.num_stacks=1', 'model.num_features=16', 'data.input_wh=64,64']))
    args = train.parse_args(['--resume', 'ckpt', *given])
    with pytest.raises(ValueError, match=r'with --resume: a resumed run keeps its recipe \(saved in ckpt\); only '
                                         r'--epochs, --max_iters, .* can change\. Start a new run to change '):
        run.resumed_config({'config': saved}, 'ckpt', train.flags_of(args), args.set)
    for allowed in (['--epochs', '7'], ['--set', 'epochs=7']):
        args = train.parse_args(['--resume', 'ckpt', *allowed])
        assert run.resumed_config({'config': saved}, 'ckpt', train.flags_of(args), args.set).epochs == 7


def test_sources_name_the_layer_of_every_value(tmp_path):
    file = tmp_path / 'mine.yaml'
    file.write_text('lr: 0.2\n')
    run = {'data': {'sigma': 1.0}}
    config = resolve_config({'epochs': 3}, run_config=run, config_file=str(file), sets=['seed=4'],
                            run_source='the run')
    assert [config.source_of(k) for k in ('epochs', 'lr', 'data.sigma', 'seed')] == [
        'the flags', str(file), 'the run', '--set']
    assert config.source_of('optimizer') == config_module.preset_path('mpii', 'hourglass')
    import dataclasses
    assert dataclasses.replace(config, epochs=4).source_of('epochs') == 'the configuration'


def test_presets_hold_only_what_their_recipe_changes():
    """configs/*.yaml: no key at its dataclass default, and no heatmap size (the SIZE RULE derives it)."""
    from lib.config import DataConfig
    defaults = to_dict(TrainConfig(data=DataConfig(dataset_root='')))
    for dataset in ('mpii', 'coco'):
        for model in preset_names(dataset):
            tree = read_config_file(config_module.preset_path(dataset, model))
            for section, values in tree.items():
                pairs = values.items() if isinstance(values, dict) else [(None, values)]
                for key, value in pairs:
                    default = defaults[section] if key is None else defaults[section][key]
                    assert value != (list(default) if isinstance(default, tuple) else default), (dataset, model, section, key)
            assert 'heatmap_wh' not in tree.get('data', {})


def test_size_rule_gives_hourglass52_mmposes_batch_at_384():
    """Issue 17: MMPose trains hourglass52 on MPII with 64 per GPU at 256x256 (td-hm_hourglass52_8xb64-210e_mpii-
    256x256) and 32 at 384x384 (td-hm_hourglass52_8xb32-210e_mpii-384x384); COCO's recipe is 32 at both."""
    assert load_preset('mpii', 'hourglass52').batch_size == 64
    assert load_preset('mpii', 'hourglass52', (384, 384)).batch_size == 32
    assert load_preset('coco', 'hourglass52', (384, 384)).batch_size == 32
    args = train.parse_args(['--model', 'hourglass52', '--image_size', '384'])
    config = train.build_config(args)
    assert (config.batch_size, config.data.heatmap_wh) == (32, (96, 96))
    assert train.build_config(train.parse_args(['--model', 'hourglass52', '--image_size', '384',
                                                '--batch_size', '8'])).batch_size == 8       # a flag wins
