"""Check a built site: every public name has its API page, every tutorial and every package page was rendered;
every experiment page shows its plots right under its table; no page uses internal vocabulary.

Usage: ``python docs/_ext/check_site.py docs/_build/html`` (run by ``scripts/docs.sh`` after sphinx-build).
Exit code 1 lists what is missing or wrong.
"""

from __future__ import annotations

import html as html_lib
import re
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


#: internal vocabulary no page may use (regular expressions; "SPEC.json" is a command's placeholder, not the word)
PROCESS_PATTERNS = (r"\bissues?\b", r"\bSPEC\b(?!\.json)", r"\bsessions?\b", r"target of the issue")


def page_text(path: Path) -> str:
    """The visible text of an HTML page (scripts, styles and tags removed, entities decoded)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    body = re.search(r'<article class="bd-article".*?</article>', text, flags=re.S)
    text = body.group(0) if body else text
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", text))


def process_words(text: str) -> list[str]:
    """Occurrences of :data:`PROCESS_PATTERNS` in ``text`` ("issue" and "session" in any case)."""
    found = []
    for pattern in PROCESS_PATTERNS:
        flags = 0 if "SPEC" in pattern else re.I
        found += re.findall(pattern, text, flags)
    return found


def pages_with_process_words(html: Path) -> list[str]:
    """``"page: words"`` for every built page whose visible text uses internal vocabulary."""
    out = []
    for page in sorted(Path(html).rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        words = process_words(page_text(page))
        if words:
            out.append(f"{page.relative_to(html)}: {sorted(set(words))}")
    return out


def misplaced_plots(html: Path) -> list[str]:
    """Experiment pages whose plots are not right under their table (between the table and the notes)."""
    out = []
    for page in sorted((Path(html) / "experiments" / "pages").glob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        body = re.search(r'<article class="bd-article".*?</article>', text, flags=re.S)
        text = body.group(0) if body else text
        imgs = [m.start() for m in re.finditer(r"<img\b", text)]
        if not imgs:
            continue
        table_end = text.find("</table>")
        if table_end < 0 or imgs[0] < table_end:
            out.append(f"{page.relative_to(html)}: a plot comes before the table")
            continue
        between = text[table_end : imgs[-1]]
        if re.search(r"<(ul|ol|h[1-6])\b", between):
            out.append(f"{page.relative_to(html)}: notes or headings between the table and its plots")
    return out


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    failed = False
    for label, problems in (
        ("page(s) missing", missing_pages(out)),
        ("experiment page(s) with plots away from their table", misplaced_plots(out)),
        ("page(s) with internal vocabulary (cite the papers or the science pages instead)",
         pages_with_process_words(out)),
    ):  # fmt: skip
        if problems:
            failed = True
            print(f"check_site: {len(problems)} {label} in {out}:", *problems, sep="\n  ")
    if failed:
        raise SystemExit(1)
    print(f"check_site: every public name, package page and tutorial is in {out}; experiment plots sit under their "
          "tables; no internal vocabulary")  # fmt: skip
