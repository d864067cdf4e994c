#!/usr/bin/env bash
# A new user's app, outside the workspace: the four packages packed as npm would publish
# them (the `shardines` bin is @shardines/cli's), installed with npm next to the app's own
# kysely and better-sqlite3 (whatever the running Node's leg uses: KYSELY and BETTER_SQLITE3
# set the ranges), then the tour
# (examples/tour) copied in: codegen, `tsc --noEmit` under NodeNext, the tour run with tsx,
# and `npm ls kysely` showing one Kysely.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kysely="${KYSELY:-~0.28.18}"
sqlite="${BETTER_SQLITE3:-^12.9.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs" "$work/app"
for pkg in core adapter-sqlite codegen cli; do
  (cd "$root/packages/$pkg" && npx -y pnpm@10.34.9 pack --pack-destination "$work/tarballs" >/dev/null)
done
cd "$work/app"
cat > package.json <<JSON
{
  "name": "consumer-app",
  "private": true,
  "type": "module",
  "dependencies": {
    "@shardines/core": "file:$work/tarballs/shardines-core-0.1.0.tgz",
    "@shardines/adapter-sqlite": "file:$work/tarballs/shardines-adapter-sqlite-0.1.0.tgz",
    "better-sqlite3": "$sqlite",
    "kysely": "$kysely"
  },
  "devDependencies": {
    "@shardines/cli": "file:$work/tarballs/shardines-cli-0.1.0.tgz",
    "@shardines/codegen": "file:$work/tarballs/shardines-codegen-0.1.0.tgz",
    "@types/node": "^22.0.0",
    "tsx": "^4.23.15",
    "typescript": "~5.9.3"
  }
}
JSON
cp -r "$root/examples/tour/migrations" "$root/examples/tour/src" "$root/examples/tour/shardines.config.ts" .
rm -rf src/db
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": ["node"]
  },
  "include": ["src/**/*.ts", "migrations/**/*.ts", "shardines.config.ts"]
}
JSON
echo "consumer app on $(node --version): kysely $kysely, better-sqlite3 $sqlite"
npm install --no-audit --no-fund --loglevel=error >/dev/null
# The bin is @shardines/cli's (core has none since the CLI moved out of it).
[ "$(readlink -f node_modules/.bin/shardines)" = "$(readlink -f node_modules/@shardines/cli/bin/shardines.js)" ] || { echo "node_modules/.bin/shardines is not @shardines/cli's bin"; exit 1; }
npx shardines codegen --out src/db
npx tsc -p tsconfig.json
npx tsx src/tour.ts > tour.out
grep -q 'over HTTP: {"tenant":"acme"' tour.out || { cat tour.out; echo "the tour did not finish"; exit 1; }
kyselys="$(npm ls kysely --all --parseable | sort -u | wc -l)"
npm ls kysely --all
if [ "$kyselys" -ne 1 ]; then echo "more than one Kysely in the app"; exit 1; fi
echo "consumer app: codegen, tsc --noEmit (NodeNext) and the tour passed, one Kysely"
