#!/usr/bin/env bash
# ws's optional native helpers for the "ws + native helpers" column of `make bench`, installed in
# bench/.native (never in the project's node_modules, whose ws must stay pure JavaScript there).
# bufferutil and utf-8-validate ship prebuilt binaries for common platforms; they are also compiled
# here with node-gyp against this Node's headers (node-gyp-build prefers build/Release), so the
# column measures binaries built for this very Node. Nothing here fails the bench: when the helpers
# cannot be had, the column says so in the results.
set -u
cd "$(dirname "$0")"
DIR=.native
PKGS="bufferutil@4.1.0 utf-8-validate@6.0.6 ws@8.23.0"

if [ ! -f "$DIR/node_modules/ws/package.json" ] || [ ! -f "$DIR/node_modules/bufferutil/package.json" ] || [ ! -f "$DIR/node_modules/utf-8-validate/package.json" ]; then
  echo "bench: installing $PKGS into bench/$DIR"
  mkdir -p "$DIR"
  if ! npm install --prefix "$DIR" --no-save --no-audit --no-fund --foreground-scripts $PKGS; then
    echo "bench: npm could not install $PKGS: the 'ws + native helpers' column will be reported unavailable"
    rm -rf "$DIR/node_modules/ws"
    exit 0
  fi
fi

GYP="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
NODEDIR="$(dirname "$(dirname "$(command -v node)")")"
for pkg in bufferutil utf-8-validate; do
  if ! ls "$DIR/node_modules/$pkg/build/Release/"*.node >/dev/null 2>&1; then
    if [ -f "$GYP" ] && [ -f "$NODEDIR/include/node/node_api.h" ] \
      && (cd "$DIR/node_modules/$pkg" && node "$GYP" rebuild --nodedir="$NODEDIR") >"$DIR/$pkg-build.log" 2>&1; then
      echo "bench: compiled $pkg with node-gyp against $NODEDIR/include/node"
    else
      echo "bench: could not compile $pkg here (see bench/$DIR/$pkg-build.log); its prebuilt binary is used if one loads"
    fi
  fi
done

# Which binary does each helper load? A JavaScript fallback is reported by the server as "did NOT load".
(cd "$DIR" && node -e '
  const path = require("path");
  for (const p of ["bufferutil", "utf-8-validate"]) {
    try {
      require(p);
      const addon = Object.keys(require.cache).find((k) => k.endsWith(".node") && k.includes(p));
      console.log("bench: " + p + ": " + (addon ? "native " + path.relative(process.cwd(), addon) : "NOT native (JavaScript fallback)"));
    } catch (e) { console.log("bench: " + p + ": cannot be loaded: " + e.message); }
  }')
exit 0
