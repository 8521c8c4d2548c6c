"""Check a built site: every public name has its API page, every tutorial and every package page was rendered.

Usage: ``python docs/_ext/check_site.py docs/_build/html`` (run by ``scripts/docs.sh`` after sphinx-build).
Exit code 1 lists what is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # this tree's tnml, as sphinx-build run from the root

from tnml_docs_api import public_names, public_packages  # noqa: E402


def missing_pages(html: Path) -> list[str]:
    """Pages the built site should have but lacks.

    Parameters
    ----------
    html : pathlib.Path
        The HTML output folder of sphinx-build.

    Returns
    -------
    list of str
        Relative paths of the missing pages (empty when the site is complete).
    """
    root = Path(__file__).resolve().parents[2]
    expected = ["index.html", "cli.html", "api/index.html"]
    for pkg in public_packages():
        expected.append(f"api/{pkg}.html")
        expected += [f"api/generated/{pkg}.{name}.html" for name in public_names(pkg)]
    expected += [f"tutorials/{nb.stem}.html" for nb in sorted((root / "tutorials").glob("*.ipynb"))]
    return [p for p in expected if not (html / p).is_file()]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    missing = missing_pages(out)
    if missing:
        print(f"check_site: {len(missing)} page(s) missing in {out}:", *missing, sep="\n  ")
        raise SystemExit(1)
    print(f"check_site: every public name, package page and tutorial is in {out}")
