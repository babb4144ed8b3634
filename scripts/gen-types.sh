#!/usr/bin/env bash
# Generate the TypeScript types of the API's messages (src/api/generated/)
# from proto/ with proto-loader-gen-types, using the loader options of
# src/api/protos.ts: camelCase fields (no --keepCase), 64-bit integers as
# decimal strings, enums as names, defaults, virtual oneof fields. The
# generated files are committed; test/unit/api-generated.test.ts runs this
# script into a temporary directory and fails if they differ.
#
# Usage: scripts/gen-types.sh [OUT_DIR]   (default: src/api/generated)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/api/generated}
mapfile -t files < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
# Clear earlier output, so a message removed from proto/ leaves no file behind.
find "$out" -name '*.ts' -delete 2>/dev/null || true
node_modules/.bin/proto-loader-gen-types \
  --longs=String --enums=String --defaults --oneofs \
  --includeComments --importFileExtension=.js \
  -I proto -O "$out" "${files[@]}"
