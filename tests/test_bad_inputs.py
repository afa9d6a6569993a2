"""Every bad input of tests/bad_inputs.py ends with one clean message: a non-zero exit, no traceback, and the
words that name the input. Run in this process through run_cli, as `python <script>` runs it."""
import os

import pytest

from tests.bad_input_workspace import prepare_base, workspace_for
from tests.bad_inputs import CASES, can_make_read_only, error_message, read_only, release_mounts, run_in_process


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    return prepare_base(str(tmp_path_factory.mktemp('bad_inputs')))


@pytest.mark.parametrize('case', CASES, ids=[case.name for case in CASES])
def test_a_bad_input_ends_in_one_clean_message(case, base, tmp_path, capfd):
    if case.spoil is not None and getattr(case.spoil, '__qualname__', '').startswith(read_only.__name__) \
            and not can_make_read_only():
        pytest.skip('no read-only folder can be made here: root ignores permissions and may not mount a tmpfs')
    ws = workspace_for(base, str(tmp_path / 'case'))
    if case.spoil is not None:
        case.spoil(ws)
    try:
        code = run_in_process(case, ws)
    finally:
        release_mounts()
    out, err = capfd.readouterr()
    assert code != 0, f'exit 0 on a bad input; output:\n{out}\n{err}'
    assert 'Traceback' not in out + err, err
    message = error_message(err)
    for word in case.expect:
        assert word in message, f'{word!r} not in the message: {message!r}'
    assert not os.path.exists(os.path.join(ws.tmp, 'pwned'))
