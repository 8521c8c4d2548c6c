#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (warnings are errors). Needs the `docs` extra:
#   bash scripts/setup.sh && .venv/bin/pip install -c constraints.txt -e ".[docs]"   (done here if missing)
# The tutorials are rendered from their stored outputs (not re-executed). If runs/summary.md exists (the main job's
# output; TNML_RUNS=DIR for another folder), the Experiments section shows that run's numbers and plots.
# Extra arguments go to sphinx-build (e.g. -E to rebuild everything).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
[ -x .venv/bin/python ] || bash scripts/setup.sh
if ! .venv/bin/python -c "import sphinx, numpydoc, myst_nb, sphinxarg, pydata_sphinx_theme" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[docs]"
fi
.venv/bin/python -m sphinx -b html -W --keep-going -q docs docs/_build/html "$@"
.venv/bin/python docs/_ext/check_site.py docs/_build/html
echo "docs: open docs/_build/html/index.html"
