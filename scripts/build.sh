#!/usr/bin/env bash
# scripts/build.sh: BPF objects -> skeleton header -> Node-API addon -> tsc.
# Each step is incremental (make, node-gyp's make, tsc --incremental).
set -euo pipefail
cd "$(dirname "$0")/.."

make -s -C bpf

# The addon embeds the skeleton, so it depends on bpf/out/sluice.skel.h.
addon=build/Release/sluice_native.node
if [[ ! -f build/Makefile ]] || [[ binding.gyp -nt build/Makefile ]]; then
	npx --no-install node-gyp configure --nodedir=/usr --loglevel=error
fi
if [[ ! -f $addon ]] || [[ -n $(find native bpf/out/sluice.skel.h bpf/include -newer "$addon" -print -quit) ]]; then
	npx --no-install node-gyp build --loglevel=error >/dev/null
fi

npx --no-install tsc -p tsconfig.json --incremental
# The CLI runs as its #! line says (node with the daemon's heap flags);
# tsc does not set the mode.
chmod 755 dist/src/cli/main.js
