"""Types that help a user: mypy on a typed user script (tests/typing/user_script.py).

Each ``reveal_type(...)`` line names in its trailing comment the type mypy must reveal (module paths
dropped, ``Union[A, B]`` written ``A | B``); each misuse carries a ``# type: ignore[code]`` that mypy must
need (--warn-unused-ignores). No JVM: mypy reads the sources.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "typing" / "user_script.py"
REVEALED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): note: Revealed type is \"(?P<type>.*)\"$")
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def normalize(revealed: str) -> str:
    """mypy's spelling of a type, as the script's comments write it.

    >>> normalize("sparkdist.jobs.Job[builtins.list[Union[builtins.int, sparkdist.errors.TaskError]]]")
    'Job[list[int | TaskError]]'
    """
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*)", "", revealed)
    while (match := re.search(r"Union\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]", text)) is not None:
        text = text[: match.start()] + " | ".join(p.strip() for p in _split(match.group(1))) + text[match.end() :]
    return text


def _split(args: str) -> list[str]:
    """Top-level comma-separated parts of a type's arguments."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(args[start:i])
            start = i + 1
    return [*parts, args[start:]]


def expected_types() -> dict[int, str]:
    """{line: type} from the script's ``reveal_type(...)  # type`` lines."""
    out = {}
    for number, line in enumerate(SCRIPT.read_text().splitlines(), 1):
        if line.startswith("reveal_type(") and "  # " in line:
            out[number] = line.rsplit("  # ", 1)[1].strip()
    return out


def test_mypy_reveals_the_result_types_and_catches_misuse() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores", "--ignore-missing-imports",
         "--python-version", "3.10", "--cache-dir", str(ROOT / ".mypy_cache"), "--hide-error-context",
         "--no-error-summary", str(SCRIPT)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    revealed = {int(m["line"]): normalize(m["type"]) for m in map(REVEALED.match, out.stdout.splitlines()) if m}
    errors = [line for line in out.stdout.splitlines() if ERROR.match(line)]
    want = expected_types()
    assert len(want) >= 40
    wrong = {line: (revealed.get(line), want[line]) for line in want if revealed.get(line) != want[line]}
    assert not wrong, "\n".join(f"line {n}: mypy reveals {got!r}, expected {exp!r}" for n, (got, exp) in wrong.items())
    assert not errors, "\n".join(errors)
