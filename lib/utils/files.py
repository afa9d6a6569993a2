"""Reading the JSON files the project and its datasets use, with errors that say what was expected."""
import json
import os
import tempfile
from typing import Optional, Tuple, Type, Union

from lib.utils.errors import BadValue, MissingFile, NotWritable


def read_json(path: str, what: str, fix: str = '', expect: Optional[Union[Type, Tuple[Type, ...]]] = None):
    """The JSON value in `path`. `what` names the expected content and `fix` says how to repair the file, for
    the error messages; `expect` (e.g. dict or list) is the type the top-level value must have."""
    fix = f'; {fix}' if fix else ''
    if not os.path.isfile(path):
        raise MissingFile(f'{what} not found: {path}{fix}')
    try:
        with open(path) as f:
            values = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadValue(f'{path} is not valid JSON ({error}); expected {what}{fix}.') from None
    if expect is not None and not isinstance(values, expect):
        raise BadValue(f'{path} holds a JSON {type(values).__name__}; expected {what}{fix}.')
    return values


def require_writable_dir(path: str, flag: str) -> str:
    """Create folder `path` if needed and check that a file can be written in it, before any long work (a
    read-only or full disk, a file in the way, no permission): NotWritable naming `flag` and the path."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix='.write_test'):
            pass
    except OSError as error:
        raise NotWritable(f'{flag} {path} is not writable ({error.strerror or error}); choose a folder you can write '
                          'to, or free space there.') from None
    return path


def write_json(path: str, values) -> None:
    """json.dump with indent 2 to `path`; a write error (disk full, read-only) is a NotWritable naming it."""
    try:
        with open(path, 'w') as f:
            json.dump(values, f, indent=2)
    except OSError as error:
        raise NotWritable(f'cannot write {path}: {error.strerror or error}. Free space there, or choose another '
                          'output folder.') from None
