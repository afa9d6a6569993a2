"""One front door (issue 19): every entry script and tool takes its configuration flags from the groups of
lib/cli.py, so that a flag has one config key and one meaning wherever it is accepted, and --config / --set /
--print_config work everywhere. The scripts' parsers are read as they are built (parse_args stopped before it
parses), and the flags are walked to the resolved configuration through --print_config (no model, no data)."""
import argparse
import importlib

import pytest
import yaml

from lib.cli import BOXES, DATA, MODEL, RUN, TEST, TRAIN, TRAIN_DATA, flags_of

SCRIPTS = ('train', 'val', 'infer', 'export', 'tools.browse_dataset', 'tools.draw_predictions', 'tools.model_info')
GROUP_FLAGS = {f'--{flag.name}': flag for flag in flags_of((DATA, TRAIN_DATA, MODEL, TEST, BOXES, TRAIN, RUN))}
# A script's own arguments that share a name with a configuration flag, and why the meaning is the same: the
# folder a script writes (train.py's --output_dir is the parent of its run folders, the config key output_dir).
SAME_NAME_EXTRAS = {'--output_dir'}


class _Parser(Exception):
    pass


def parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The ArgumentParser that `module`.parse_args builds, taken at the moment it would parse."""
    def stop(self, *args, **kwargs):
        raise _Parser(self)
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, 'parse_args', stop)
        with pytest.raises(_Parser) as caught:
            importlib.import_module(module).parse_args([])
    return caught.value.args[0]


def options(parser) -> dict:
    return {option: action for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize('module', SCRIPTS)
def test_every_configuration_flag_is_a_row_of_lib_cli(module, monkeypatch):
    """A flag named like a row of lib/cli.py is that row (same destination, same help, same type or action), and
    every script has --config, --set and --print_config."""
    taken = options(parser_of(module, monkeypatch))
    for option in ('--config', '--set', '--print_config', '--help'):
        assert option in taken, f'{module} lacks {option}'
    for option, action in taken.items():
        flag = GROUP_FLAGS.get(option)
        if flag is None or option in SAME_NAME_EXTRAS and not (action.help or '').startswith(flag.help):
            continue
        assert action.dest == flag.name and action.default is None, (module, option)
        assert action.help.startswith(flag.help), f'{module} {option}: {action.help!r} is not lib/cli.py\'s row'
        assert action.type is flag.kwargs.get('type', action.type) and action.choices == flag.kwargs.get('choices'), \
            (module, option)


@pytest.mark.parametrize('module', SCRIPTS)
def test_help_names_sizes_height_by_width_once(module, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(module).main(['--help'])
    assert stopped.value.code == 0
    assert ' '.join(capsys.readouterr().out.split()).count('height x width') == 1


def resolved(module: str, argv, capsys) -> dict:
    """The configuration tree `module` resolves for argv (its --print_config)."""
    assert importlib.import_module(module).main([*argv, '--print_config']) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize('module', SCRIPTS)
def test_image_size_means_height_by_width_everywhere(module, capsys):
    """--image_size 256x192 is 256 high and 192 wide in every script (export.py and the tools took a square
    side, tools/model_info.py the width, before issue 19); the heatmaps are a quarter of it."""
    tree = resolved(module, ['--image_size', '256x192', '--model', 'pose_resnet_50'], capsys)
    assert (tree['data']['input_wh'], tree['data']['heatmap_wh']) == ([192, 256], [48, 64])


@pytest.mark.parametrize('module', ('train', 'val', 'infer', 'export', 'tools.draw_predictions'))
def test_decode_sets_the_test_decoder_wherever_predictions_are_made(module, capsys):
    assert resolved(module, [], capsys)['test']['decode'] == 'quarter'
    assert resolved(module, ['--decode', 'dark'], capsys)['test']['decode'] == 'dark'
    assert resolved(module, ['--set', 'test.decode=dark'], capsys)['test']['decode'] == 'dark'


@pytest.mark.parametrize('module', ('train', 'val', 'tools.browse_dataset'))
def test_udp_and_unbiased_encoding_set_the_targets_wherever_data_is_read(module, capsys):
    assert resolved(module, ['--udp'], capsys)['data']['udp'] is True
    assert resolved(module, ['--unbiased_encoding', '--decode', 'dark'] if module != 'tools.browse_dataset'
                    else ['--unbiased_encoding'], capsys)['data']['unbiased_encoding'] is True
    with pytest.raises(ValueError, match=r'data\.udp \(from the flags\) and data\.unbiased_encoding \(from the '
                                         r'flags\) are both on'):
        resolved(module, ['--udp', '--unbiased_encoding'], capsys)


def test_infer_takes_val_pys_det_file(capsys):
    """infer.py's --det_file is the row val.py takes (BOXES); --set test.det_file reaches it too."""
    assert resolved('infer', ['--det_file', 'dets.json'], capsys)['test']['det_file'] == 'dets.json'
