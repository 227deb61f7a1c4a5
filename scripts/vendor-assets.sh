#!/usr/bin/env bash
# Re-fetch the front-end assets that the offline maps serve from data/static/vendor/.
#
# Only the npm registry is needed (`npm pack`); nothing is installed into node_modules.
# Keeps the files pages load (minified js/css, images, woff2 webfonts) plus each package's licence,
# applies the two documented patches (see data/static/VENDOR.md) and writes the
# leaflet.awesome.rotate.css that folium loads from its own repository.
#
# Usage: scripts/vendor-assets.sh            (run from anywhere; rewrites data/static/vendor/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/data/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# name@version -> extraction folder (the folder names are the URLs geo/maps.py serves)
PACKAGES=(
  "leaflet@1.9.4"
  "jquery@3.7.1"
  "bootstrap@5.2.2"
  "@fortawesome/fontawesome-free@6.2.0"
  "leaflet.awesome-markers@2.0.4"
  "leaflet.markercluster@1.5.3"
  "leaflet.vectorgrid@1.3.0"
)

fetch() {  # fetch NAME@VERSION DIR -> unpacks the tarball's package/ into $WORK/DIR
  local spec="$1" dir="$2" tgz
  tgz="$(cd "$WORK" && npm pack --silent "$spec" | tail -n 1)"
  mkdir -p "$WORK/$dir"
  tar -xzf "$WORK/$tgz" -C "$WORK/$dir" --strip-components=1
}

for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"; version="${spec##*@}"
  fetch "$spec" "$(basename "$name")-$version"
done

rm -rf "$VENDOR"
mkdir -p "$VENDOR"

# Leaflet
d="$VENDOR/leaflet-1.9.4"; s="$WORK/leaflet-1.9.4"
mkdir -p "$d/images"
cp "$s/dist/leaflet.js" "$s/dist/leaflet.css" "$s/LICENSE" "$d/"
cp "$s"/dist/images/*.png "$d/images/"

# jQuery (folium 0.20 loads jquery-3.7.1.min.js)
d="$VENDOR/jquery-3.7.1"; s="$WORK/jquery-3.7.1"
mkdir -p "$d"
cp "$s/dist/jquery.min.js" "$s/LICENSE.txt" "$d/"

# Bootstrap (folium 0.20 loads 5.2.2)
d="$VENDOR/bootstrap-5.2.2"; s="$WORK/bootstrap-5.2.2"
mkdir -p "$d"
cp "$s/dist/css/bootstrap.min.css" "$s/dist/js/bootstrap.bundle.min.js" "$s/LICENSE" "$d/"

# Font Awesome Free (folium 0.20 loads 6.2.0): css + woff2 only; the .ttf fallbacks are removed
# from the CSS so that every url() it references exists (every browser we support reads woff2).
d="$VENDOR/fontawesome-free-6.2.0"; s="$WORK/fontawesome-free-6.2.0"
mkdir -p "$d/css" "$d/webfonts"
sed -E 's#,url\(\.\./webfonts/[a-z0-9-]+\.ttf\) format\("truetype"\)##g' \
  "$s/css/all.min.css" > "$d/css/all.min.css"
cp "$s"/webfonts/*.woff2 "$d/webfonts/"
cp "$s/LICENSE.txt" "$d/"
if grep -q '\.ttf' "$d/css/all.min.css"; then
  echo "fontawesome: .ttf references left in all.min.css; update the sed above" >&2
  exit 1
fi

# Leaflet.awesome-markers 2.0.4 (folium loads 2.0.2 from cdnjs; same API)
d="$VENDOR/leaflet.awesome-markers-2.0.4"; s="$WORK/leaflet.awesome-markers-2.0.4"
mkdir -p "$d/images"
cp "$s/dist/leaflet.awesome-markers.min.js" "$s/dist/leaflet.awesome-markers.css" "$s/LICENSE" "$d/"
cp "$s"/dist/images/markers-{soft,shadow}{,@2x}.png "$d/images/"

# leaflet.awesome.rotate.css: folium's Icon(angle=N) adds the class fa-rotate-N (0..359).
d="$VENDOR/leaflet.awesome.rotate"
mkdir -p "$d"
{
  echo "/* Rotates awesome-marker icons: folium.Icon(angle=N) adds class fa-rotate-N. Recreated for folium. */"
  for a in $(seq 0 359); do
    printf '.awesome-marker .fa-rotate-%d{transform:rotate(%ddeg)}\n' "$a" "$a"
  done
} > "$d/leaflet.awesome.rotate.min.css"

# Leaflet.markercluster 1.5.3
d="$VENDOR/leaflet.markercluster-1.5.3"; s="$WORK/leaflet.markercluster-1.5.3"
mkdir -p "$d"
cp "$s/dist/leaflet.markercluster.js" "$s/dist/MarkerCluster.css" "$s/dist/MarkerCluster.Default.css" \
  "$s/MIT-LICENCE.txt" "$d/"

# Leaflet.VectorGrid 1.3.0 (bundled: includes pbf and @mapbox/vector-tile), patched for Leaflet >= 1.8:
# L.DomEvent.fakeStop no longer exists, so a click on a feature threw a TypeError. The patched
# _onClick does what Leaflet 1.9's own L.Canvas._onClick does: fire the clicked layer (if any) and let
# the map fire its own click (tile canvases carry _leaflet_disable_events, so the map never sees them).
d="$VENDOR/leaflet.vectorgrid-1.3.0"; s="$WORK/leaflet.vectorgrid-1.3.0"
mkdir -p "$d"
old='r&&(L.DomEvent.fakeStop(t),this._fireEvent([r],t))'
new='this._fireEvent(r?[r]:!1,t)/*safezone patch for Leaflet>=1.8*/'
src="$s/dist/Leaflet.VectorGrid.bundled.min.js"
if [ "$(grep -o -F "$old" "$src" | wc -l)" != 1 ]; then
  echo "vectorgrid: the fakeStop call to patch was not found exactly once" >&2
  exit 1
fi
OLD="$old" NEW="$new" node -e '
  const fs = require("fs");
  const [src, dst] = process.argv.slice(1);
  fs.writeFileSync(dst, fs.readFileSync(src, "utf8").replace(process.env.OLD, process.env.NEW));
' "$src" "$d/Leaflet.VectorGrid.bundled.min.js"
if grep -q fakeStop "$d/Leaflet.VectorGrid.bundled.min.js"; then
  echo "vectorgrid: fakeStop still referenced after patching" >&2
  exit 1
fi
# The npm tarball has no LICENSE file; the licence is stated in its README ("Legalese") and package.json.
{
  echo "Leaflet.VectorGrid 1.3.0 -- licence as stated in the package README (section \"Legalese\")"
  echo "and package.json (\"license\": \"Beerware\"):"
  echo
  sed -n '/^## Legalese/,$p' "$s/README.md" | tail -n +2
  echo
  echo "The bundled build also contains (per the README):"
  sed -n '/^\* \[geojson-vt\]/,/^\* \[vector-tile\]/p' "$s/README.md"
} > "$d/LICENSE"

du -sh "$VENDOR"
