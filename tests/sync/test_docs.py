"""Every Python example in docs/keeping-vectors-in-sync.md runs as it is and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "keeping-vectors-in-sync.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_example_runs_and_prints_what_it_says(source: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={"VECTORKNOBS_PLUGINS": "", "PATH": ""}, check=False)
    assert done.returncode == 0, done.stderr
    printed = [line.rstrip() for line in done.stdout.replace("\r", "\n").splitlines() if line.strip()]
    # ``print(x)  # 5001 5000 0 ['bad']``: the comment up to a ':' is what is printed; with '...' in it, the
    # part before the first '('
    for comment in re.findall(r"print\(.*\)\s+# (.*)", source):
        shown = comment.split(":")[0].strip()
        if "..." in shown:
            shown = shown.split("(")[0]
        assert any(shown in line for line in printed), f"{shown!r} not in {printed}"
