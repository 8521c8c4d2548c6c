"""Run the python code blocks of the documentation pages (``docs/**/*.md``), so the guide cannot drift from the API.

The blocks of one page run in order in one namespace (later blocks may use names from earlier ones).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "runs" not in p.parts and "```python" in p.read_text()
)


def test_pages_with_code_exist():
    assert len(PAGES) >= 5, PAGES


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks
    namespace: dict = {}
    for i, block in enumerate(blocks):
        code = compile(block, f"{page.relative_to(DOCS)} (block {i + 1})", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own examples
