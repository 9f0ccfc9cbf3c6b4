#!/usr/bin/env bash
# Re-vendors the graph libraries that `netmap-reduce --format html` embeds (src/reduce/html/vendor/, compiled in
# with include_str!). Versions are pinned by scripts/html-vendor/package.json and its package-lock.json; to
# upgrade, edit the versions there, run `npm install --package-lock-only --ignore-scripts` in that folder, then
# this script, and commit all three together. Building the crate never needs npm or the network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../src/reduce/html/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/html-vendor/package.json" "$here/html-vendor/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
mkdir -p "$out"
cp "$work/node_modules/cytoscape/dist/cytoscape.min.js" "$out/cytoscape.min.js"
cp "$work/node_modules/cytoscape/LICENSE" "$out/cytoscape.LICENSE"
cp "$work/node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.js" "$out/cytoscape-dagre.min.js"
cp "$work/node_modules/cytoscape-dagre/LICENSE" "$out/cytoscape-dagre.LICENSE"
# dagre and graphlib are bundled inside cytoscape-dagre.min.js; their licences ship with it.
cp "$work/node_modules/@dagrejs/dagre/LICENSE" "$out/dagre.LICENSE"
cp "$work/node_modules/@dagrejs/graphlib/LICENSE" "$out/graphlib.LICENSE"
{
  echo "Vendored by scripts/vendor-html.sh from the npm registry (versions pinned in scripts/html-vendor/package-lock.json):"
  for p in cytoscape cytoscape-dagre @dagrejs/dagre @dagrejs/graphlib; do
    node -e "const p=require('$work/node_modules/$p/package.json'); console.log('- ' + p.name + ' ' + p.version + ' (' + p.license + ')')"
  done
  echo "cytoscape-dagre.min.js bundles dagre and graphlib; their licences are dagre.LICENSE and graphlib.LICENSE."
} > "$out/VERSIONS"
(cd "$out" && sha256sum cytoscape.min.js cytoscape-dagre.min.js > SHA256SUMS)
echo "vendored into $out:"; cat "$out/VERSIONS"
