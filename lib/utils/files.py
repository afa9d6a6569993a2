"""Reading the JSON files the project and its datasets use, with errors that say what was expected."""
import json
import os
from typing import Optional, Tuple, Type, Union


def read_json(path: str, what: str, fix: str = '', expect: Optional[Union[Type, Tuple[Type, ...]]] = None):
    """The JSON value in `path`. `what` names the expected content and `fix` says how to repair the file, for
    the error messages; `expect` (e.g. dict or list) is the type the top-level value must have."""
    fix = f'; {fix}' if fix else ''
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}{fix}')
    try:
        with open(path) as f:
            values = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f'{path} is not valid JSON ({error}); expected {what}{fix}.') from None
    if expect is not None and not isinstance(values, expect):
        raise ValueError(f'{path} holds a JSON {type(values).__name__}; expected {what}{fix}.')
    return values
