"""Generate the API reference sources from the packages' ``__all__`` (run by ``docs/conf.py`` at every build).

Every package under :mod:`tnml` that defines ``__all__`` gets one page, ``api/<package>.rst``, listing each of its
public names in an ``autosummary`` table; autosummary then writes one page per name. Nothing is listed by hand, so
a name added to an ``__all__`` appears in the reference at the next build, and a package added under ``tnml/``
(``tnml.testing``, ``tnml.baselines``, ...) gets its own page.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

#: short descriptions for the index of the reference; a package missing here is listed with its docstring's summary
ORDER = [
    "tnml",
    "tnml.init",
    "tnml.networks",
    "tnml.plans",
    "tnml.entanglement",
    "tnml.preprocessing",
    "tnml.dynamics",
    "tnml.regularization",
    "tnml.datasets",
    "tnml.experiments",
]

#: public modules (not packages) that are documented as their own page
MODULES = ["tnml.init", "tnml.network_form", "tnml.options", "tnml.spectrum", "tnml.training"]


def public_packages() -> list[str]:
    """Every package under ``tnml`` (at any depth, ``tnml`` included) that defines ``__all__``, in reading order.

    Returns
    -------
    list of str
        Dotted package names: those of :data:`ORDER` first, then any other package in alphabetical order.
    """
    import tnml

    found = ["tnml"]
    for info in pkgutil.walk_packages(tnml.__path__, prefix="tnml."):
        if info.ispkg and hasattr(importlib.import_module(info.name), "__all__"):
            found.append(info.name)
    found += [m for m in MODULES if hasattr(importlib.import_module(m), "__all__")]
    return [p for p in ORDER if p in found] + sorted(p for p in found if p not in ORDER)


def public_names(package: str) -> list[str]:
    """The names a package exports, ``sorted(set(__all__))``.

    Parameters
    ----------
    package : str
        Dotted name of the package, e.g. ``"tnml.entanglement"``.

    Returns
    -------
    list of str
        Its public names, sorted case-insensitively.
    """
    mod = importlib.import_module(package)
    return sorted(set(mod.__all__), key=lambda s: (s.lower(), s))


def _summary(package: str) -> str:
    doc = (importlib.import_module(package).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def write_api_pages(out_dir: Path) -> list[Path]:
    """Write ``index.rst`` and one ``<package>.rst`` per public package into ``out_dir``.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the generated sources (created if missing; files it holds from an earlier build are replaced,
        stale package pages removed).

    Returns
    -------
    list of pathlib.Path
        The pages written, the index first.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    packages = public_packages()
    for stale in out_dir.glob("tnml*.rst"):
        if stale.stem not in packages:
            stale.unlink()
    index = [
        "API reference",
        "=============",
        "",
        "One page per package; every name in the package's ``__all__`` has its own page, generated from its",
        "docstring. This reference is generated at build time from ``__all__``, so it lists exactly what the",
        "packages export.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 10 65",
        "",
        "   * - package",
        "     - names",
        "     - contents",
    ]
    for pkg in packages:
        index += [f"   * - :doc:`{pkg}`", f"     - {len(public_names(pkg))}", f"     - {_summary(pkg)}"]
    index += ["", ".. toctree::", "   :hidden:", ""] + [f"   {pkg}" for pkg in packages] + [""]
    written = [out_dir / "index.rst"]
    _write_if_changed(written[0], "\n".join(index))
    for pkg in packages:
        title = f"``{pkg}``"
        lines = (
            [
                title,
                "=" * len(title),
                "",
                f".. automodule:: {pkg}",
                "   :no-members:",
                "   :no-index:",
                "",
                f".. currentmodule:: {pkg}",
                "",
                ".. autosummary::",
                "   :toctree: generated",
                "   :nosignatures:",
                "",
            ]
            + [f"   {name}" for name in public_names(pkg)]
            + [""]
        )
        path = out_dir / f"{pkg}.rst"
        _write_if_changed(path, "\n".join(lines))
        written.append(path)
    return written


def _write_if_changed(path: Path, text: str) -> None:
    # an unchanged source keeps its mtime, so an incremental build does not re-read every page
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
