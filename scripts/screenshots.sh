#!/usr/bin/env bash
# Screenshots of the built documentation for a person to look at before a release: the home page, an API page,
# the experiments overview and every experiment page, and a tutorial, each at 1280 px (desktop) and 390 px (phone)
# wide, with headless Chromium (Debian: `apt-get install chromium`). Build the site first (`bash scripts/docs.sh`).
#   bash scripts/screenshots.sh [HTML_DIR] [OUT_DIR]     (defaults: docs/_build/html, docs/_build/screenshots)
# Look for: tables whose right-hand columns are cut off (they must wrap or scroll), plots far from their table.
set -euo pipefail
cd "$(dirname "$0")/.."
html=${1:-docs/_build/html}
out=${2:-docs/_build/screenshots}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "screenshots: no chromium found; install it (Debian: apt-get install chromium)" >&2
  exit 2
fi
[ -f "$html/index.html" ] || { echo "screenshots: $html/index.html not found; run bash scripts/docs.sh" >&2; exit 2; }
mkdir -p "$out"
pages=(index.html experiments/index.html experiments/latest.html)
api=$(ls "$html"/api/generated/tnml.networks.MPS.html 2>/dev/null || ls "$html"/api/generated/*.html | head -n 1)
pages+=("${api#"$html"/}")
tutorial=$(ls "$html"/tutorials/*.html | grep -v '/index.html$' | head -n 1)
pages+=("${tutorial#"$html"/}")
for p in "$html"/experiments/pages/*.html; do pages+=("${p#"$html"/}"); done
for page in "${pages[@]}"; do
  for width in 1280 390; do
    name=$(echo "${page%.html}" | tr '/' '_')_${width}.png
    # a tall window: the whole page of a short experiment fits; longer pages show their top (table and plots)
    timeout 60 "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
      --window-size="$width,2400" --screenshot="$out/$name" "file://$PWD/$html/$page" >/dev/null 2>&1 \
      || echo "screenshots: failed on $page at $width px" >&2
  done
done
echo "screenshots: $(ls "$out"/*.png | wc -l) pictures in $out"
