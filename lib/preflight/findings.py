"""One preflight check's outcome, the table that prints them and the JSON report to attach to a bug report."""
import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Sequence

PASS, FAIL, INFO, NOT_RUN = 'pass', 'FAIL', 'info', 'not run'


@dataclass
class Finding:
    check: str                  # what was checked or measured, e.g. 'optimizer step = formula (rmsprop)'
    result: str                 # PASS, FAIL (an invariant does not hold), INFO (a measurement) or NOT_RUN
    value: str                  # what was measured, for the table
    expected: str = ''          # the bar, or what the figure means
    fix: str = ''               # what to do when it fails (or why it was not run)
    data: dict = field(default_factory=dict)   # the numbers behind `value`, for the JSON report


def failures(findings: Sequence[Finding]) -> List[Finding]:
    return [finding for finding in findings if finding.result == FAIL]


def _cell(text: str) -> str:
    return str(text).replace('|', '/').replace('\n', ' ')


def findings_table(findings: Sequence[Finding]) -> str:
    """Markdown table: check | result | measured | expected / note."""
    lines = ['| check | result | measured | expected / note |', '|---|---|---|---|']
    for finding in findings:
        note = finding.expected if finding.result != NOT_RUN else finding.fix
        lines.append(f'| {_cell(finding.check)} | {finding.result} | {_cell(finding.value)} | {_cell(note)} |')
    return '\n'.join(lines)


def write_report(path: str, environment: dict, config: dict, findings: Sequence[Finding], command: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    report = {'command': command, 'environment': environment, 'config': config,
              'failed': [finding.check for finding in failures(findings)],
              'findings': [asdict(finding) for finding in findings]}
    with open(path, 'w') as f:
        json.dump(report, f, indent=1, default=str)
        f.write('\n')
