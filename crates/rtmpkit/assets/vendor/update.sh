#!/usr/bin/env bash
# Refreshes the players the watch page uses from their npm packages
# (the versions below), with their licences. Needs npm; run from anywhere.
set -euo pipefail
HLS_JS=1.7.4
MPEGTS_JS=1.8.2
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "hls.js@$HLS_JS" "mpegts.js@$MPEGTS_JS" >/dev/null
mkdir hls mpegts
tar xzf "hls.js-$HLS_JS.tgz" -C hls
tar xzf "mpegts.js-$MPEGTS_JS.tgz" -C mpegts
cp hls/package/dist/hls.light.min.js "$here/"
cp hls/package/LICENSE "$here/hls.js.LICENSE"
cp mpegts/package/dist/mpegts.js "$here/"
cp mpegts/package/dist/mpegts.js.LICENSE.txt "$here/"
cp mpegts/package/LICENSE "$here/mpegts.js.LICENSE"
echo "hls.js $HLS_JS and mpegts.js $MPEGTS_JS are in $here"
