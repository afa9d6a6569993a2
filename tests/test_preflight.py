"""tools/preflight.py on the CPU (what CI can run): every invariant holds and is reported, the measurements say at
what batch they were taken, the JSON report is written, and a broken update ends the preflight with exit code 1."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from tests.helpers import REPO

TINY = ['--image_size', '64', '--num_stacks', '1', '--num_features', '16', '--workers', '1', '--seconds', '0.3',
        '--device', 'cpu']


@pytest.fixture(scope='module')
def data_root(synthetic_mpii):
    return synthetic_mpii(16, 8, 1)


def test_preflight_on_the_cpu_passes_and_writes_its_report(data_root, tmp_path):
    report = tmp_path / 'preflight.json'
    done = subprocess.run([sys.executable, 'tools/preflight.py', '--dataset_root', data_root, *TINY,
                           '--output', str(report)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'All invariants hold on this device.' in done.stdout
    findings = {row['check']: row for row in json.loads(report.read_text())['findings']}
    for check in ('optimizer step = formula (rmsprop, configured)', 'optimizer step = formula (adam)',
                  'rmsprop beta powers on the CPU place', 'BatchNorm running variance = unbiased (float32)',
                  'non-finite step leaves the model bit-identical (float32, O1)',
                  'fp16 loss scale halves on an overflow', 'host synchronisations per step',
                  'shared memory for --workers 1'):
        assert findings[check]['result'] == 'pass', findings[check]
    # what a CPU cannot run is said, with the reason
    assert findings['non-finite step leaves the model bit-identical (bf16, O1)']['result'] == 'not run'
    assert 'autocast' in findings['non-finite step leaves the model bit-identical (bf16, O1)']['fix']
    throughput = findings['training-step throughput']
    assert 'batch 1 of the configured 16' in throughput['expected'] and throughput['data']['images_per_second'] > 0
    assert findings['verdict']['data']['verdict'] in ('data-bound', 'compute-bound')
    assert findings['data pipeline per worker']['data']['source'].startswith('mpii train at')
    assert '| host synchronisations per step | pass |' in done.stdout


def test_a_wrong_update_on_this_device_fails_the_preflight(data_root, tmp_path, monkeypatch, capsys):
    """An Adam kernel whose step is 1 % too long (a Paddle change) must be named, with exit code 1."""
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    import preflight
    from lib.core import optim
    original = paddle._C_ops.adam_

    def drifting_adam(param, *args, **kwargs):
        before = param.numpy().copy()
        out = original(param, *args, **kwargs)
        paddle.assign(paddle.to_tensor(before + (param.numpy() - before) * 1.01), output=param)
        return out
    monkeypatch.setattr(paddle._C_ops, 'adam_', drifting_adam)
    monkeypatch.setattr(optim, '_FORMULA_CHECKED', set())
    code = preflight.main(['--dataset_root', data_root, *TINY, '--optimizer', 'adam', '--workers', '0',
                           '--output', str(tmp_path / 'report.json')])
    captured = capsys.readouterr()
    assert code == 1
    assert 'FAILED: optimizer step = formula (adam, configured)' in captured.err
    assert 'FAILED: optimizer step = formula (rmsprop)' in captured.err      # refused by TorchRMSProp itself
    report = json.loads((tmp_path / 'report.json').read_text())
    assert 'optimizer step = formula (adam, configured)' in report['failed']
    assert np.isfinite(report['findings'][0]['data'].get('relative_error_per_scale', {}).get('0.01', 0.0))


def test_without_a_training_set_the_preflight_says_its_pipeline_rows_used_generated_images(tmp_path, capsys):
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    import preflight
    code = preflight.main(['--dataset_root', str(tmp_path / 'absent'), *TINY, '--workers', '0',
                           '--output', str(tmp_path / 'report.json')])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert 'Note: no training set (' in out and 'used generated images' in out
