#!/usr/bin/env bash
# scripts/setup.sh: make this machine able to build and run sluice, then build
# whatever changed. Idempotent: on a machine that has everything and a tree
# that is built, it checks and returns in a few seconds.
#
#   1. Debian packages (installed only if missing; --bench adds the
#      benchmark's extra tools)
#   2. bpffs mounted at /sys/fs/bpf
#   3. npm dependencies (npm ci when package-lock.json changed)
#   4. BPF objects -> skeleton -> addon -> TypeScript (scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

# jq: the CLI tests pipe its output into jq, as its users do.
# etcd-server: the tests and the demo start their own etcd clusters
# (src/demo/etcd-cluster.ts); etcd-client: etcdctl, to look into one by hand.
# prometheus: its promtool checks the metrics the tests scrape.
# dnsutils: dig asks the built-in DNS server. chromium: the status page test
# drives it headless (playwright-core). tmux: `sluice top` is read back from
# a tmux pane, a real pseudo-terminal. curl: tests ask servers over each
# family (curl -4/-6, -g for bracketed IPv6 literals).
APT_PACKAGES=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev iproute2 iputils-ping
	ethtool make g++ python3 openssl iptables nftables jq etcd-server etcd-client prometheus
	dnsutils chromium tmux curl)
# `setup.sh --bench` (npm run bench): also trafgen (the benchmark's second
# packet generator), conntrack (to empty netfilter's table between peers),
# and dnsperf with dnsmasq-base (the DNS server measured beside ours;
# -base has no service unit that would want port 53).
if [[ ${1:-} == --bench ]]; then
	APT_PACKAGES+=(netsniff-ng conntrack dnsperf dnsmasq-base)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "setup: installing Debian packages: ${missing[*]}" >&2
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup: need root to install packages (and to load BPF)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl is not a Debian package here (Debian's kubernetes-client is 1.20 and
# conflicts with the machine's 1.32): the kube-proxy tests need the one the
# machine comes with, and fail without it.
if ! command -v kubectl >/dev/null; then
	echo "setup: warning: kubectl not found: the kube-proxy tests hold their API server to it and will fail, and \`npm run demo -- kube-proxy\` runs it" >&2
fi

if ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi

# npm ci only when the lock file changed since the last install.
if [[ ! -f node_modules/.package-lock.json ]] ||
	[[ package-lock.json -nt node_modules/.package-lock.json ]]; then
	echo "setup: npm ci" >&2
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.package-lock.json
fi

bash scripts/build.sh
