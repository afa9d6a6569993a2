"""Check that the imports of the repository only point down its floors (tests/test_layers.py runs it).

    python tools/check_layers.py            # prints the floors and every import that breaks them; exit 1 if any

A room is a folder of lib/ (lib/core, lib/datasets, ...), a module of lib/ (lib/config.py, lib/cli.py), an
entry script, tools/ or benchmarks/. Every import, at module level or inside a function, must name a room on a
lower floor than its own, or its own room. Tests are no rooms.
"""
import argparse
import ast
import os
import sys
from typing import Dict, Iterator, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Floors from the ground up. Rooms on one floor do not import each other.
FLOORS: Tuple[Tuple[str, ...], ...] = (
    ('lib/utils',),                                   # files, errors, checkpoints, devices, threads: no pose
    ('lib/config', 'lib/models'),                     # the configuration tree; the networks
    ('lib/datasets', 'lib/convert', 'lib/cli'),       # data and codec; foreign weights; the flags
    ('lib/vis', 'lib/inference', 'lib/core'),         # pictures; deployment; training and evaluation
    ('lib/preflight',),                               # the checks of a device and a data set before a long run
    ('train', 'val', 'infer', 'export', 'tools', 'benchmarks'),    # what a user runs
)
FLOOR_OF: Dict[str, int] = {room: level for level, rooms in enumerate(FLOORS, 1) for room in rooms}
SKIPPED = ('tests', '.git', 'output', 'data', 'images', 'configs')


def room_of_module(module: str) -> Optional[str]:
    """The room an import names ('lib.core.run' -> 'lib/core', 'train' -> 'train'), None outside the repo."""
    parts = module.split('.')
    if parts[0] == 'lib':
        return f'lib/{parts[1]}' if len(parts) > 1 else None
    return parts[0] if parts[0] in FLOOR_OF else None


def room_of_file(path: str) -> str:
    """The room of a file relative to the repository: lib/core/run.py -> lib/core, val.py -> val."""
    parts = path.split(os.sep)
    if parts[0] == 'lib':
        return 'lib/' + (parts[1][:-3] if parts[1].endswith('.py') else parts[1])
    return parts[0][:-3] if parts[0].endswith('.py') else parts[0]


def imports_of(source: str) -> Iterator[Tuple[int, str]]:
    """(line, module) of every absolute import; `from lib import config` names lib.config."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == 'lib':
                yield from ((node.lineno, f'lib.{alias.name}') for alias in node.names)
            else:
                yield node.lineno, node.module


def python_files(repo: str) -> Iterator[str]:
    for folder, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not (os.path.relpath(os.path.join(folder, d), repo) in SKIPPED
                                                 or d.startswith('.') or d == '__pycache__'))
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.relpath(os.path.join(folder, name), repo)


def violations(repo: str = REPO) -> List[str]:
    """One line per import that does not point down: 'file:line room (floor) imports room (floor)', and
    per file whose room has no floor."""
    found = []
    for path in python_files(repo):
        if path in ('conftest.py', os.path.join('lib', '__init__.py')):
            continue
        room = room_of_file(path)
        if room not in FLOOR_OF:
            found.append(f'{path}: room {room} stands on no floor; add it to FLOORS in tools/check_layers.py')
            continue
        with open(os.path.join(repo, path)) as f:
            source = f.read()
        for line, module in imports_of(source):
            target = room_of_module(module)
            if target is None or target == room:
                continue
            if target not in FLOOR_OF or FLOOR_OF[target] >= FLOOR_OF[room]:
                found.append(f'{path}:{line} {room} (floor {FLOOR_OF[room]}) imports {module}, '
                             f'{target} (floor {FLOOR_OF.get(target, "none")}): imports must point down')
    return found


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for level in range(len(FLOORS), 0, -1):
        print(f'floor {level}: {", ".join(FLOORS[level - 1])}')
    found = violations()
    for line in found:
        print(line)
    print(f'{len(found)} import(s) against the floors' if found else 'every import points down')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
