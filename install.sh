#!/usr/bin/env bash
# Builds mgrnotify and installs it into a BILLmanager root (default /usr/local/mgr5):
# the binary, the role symlinks, the bundled provider scripts and their plugin XML.
# Idempotent. `--uninstall` removes exactly what it installed and nothing of
# BILLmanager's; provider scripts an operator changed or added are kept.
#
#   ./install.sh [--root DIR] [--uninstall] [--no-build] [--binary PATH]
set -euo pipefail

ROOT=/usr/local/mgr5
MODE=install
BUILD=1
BINARY=""
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --no-build) BUILD=0; shift ;;
    --binary) BINARY=${2:?--binary needs a path}; BUILD=0; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
MANIFEST="$ROOT/etc/mgrnotify/install.manifest"
LINK_TARGET=../sbin/mgrnotify
say() { echo "install.sh: $*"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
is_our_link() { [ -L "$1" ] && [ "$(readlink "$1")" = "$LINK_TARGET" ]; }

# The Debian packages needed: a C compiler to build the embedded JavaScript engine, and
# libxslt (loaded at run time for XSLT templates). Installed when missing and apt-get
# is at hand.
ensure_build_deps() {
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  [ -n "$(ldconfig -p 2>/dev/null | grep 'libxslt\.so\.1 ')" ] || missing+=(libxslt1.1)
  if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      say "installing build packages: ${missing[*]}"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "install.sh: please install these packages first: ${missing[*]}" >&2
      exit 1
    fi
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
  fi
}

install_all() {
  if [ "$BUILD" = 1 ]; then
    ensure_build_deps
    say "building (release)"
    (cd "$HERE" && cargo build --release --locked --quiet)
    BINARY="${CARGO_TARGET_DIR:-$HERE/target}/release/mgrnotify"
  fi
  [ -n "$BINARY" ] || BINARY="${CARGO_TARGET_DIR:-$HERE/target}/release/mgrnotify"
  [ -x "$BINARY" ] || { echo "install.sh: no binary at $BINARY" >&2; exit 1; }

  mkdir -p "$ROOT/sbin" "$ROOT/notify" "$ROOT/gate" "$ROOT/etc/xml" "$ROOT/var" \
           "$ROOT/etc/mgrnotify/scripts"
  local new_manifest
  new_manifest=$(mktemp)
  # Replace the binary atomically: running modules keep their copy.
  install -m 0755 "$BINARY" "$ROOT/sbin/mgrnotify.new"
  mv -f "$ROOT/sbin/mgrnotify.new" "$ROOT/sbin/mgrnotify"
  echo "file sbin/mgrnotify" >>"$new_manifest"

  local link rel
  for link in "$HERE"/symlinks/notify/* "$HERE"/symlinks/gate/*; do
    rel=${link#"$HERE"/symlinks/}
    if is_our_link "$ROOT/$rel"; then
      :
    elif [ -e "$ROOT/$rel" ] || [ -L "$ROOT/$rel" ]; then
      say "$rel exists and is not mgrnotify's: left alone"
      continue
    else
      ln -s "$LINK_TARGET" "$ROOT/$rel"
    fi
    echo "link $rel" >>"$new_manifest"
  done

  # Bundled scripts are upgraded unless the operator changed the installed copy.
  local script name dest old
  for script in "$HERE"/scripts/*.rhai; do
    name=$(basename "$script")
    dest="$ROOT/etc/mgrnotify/scripts/$name"
    old=$(grep -s "^script etc/mgrnotify/scripts/$name " "$MANIFEST" | cut -d' ' -f3 || true)
    if [ -f "$dest" ] && [ "$(sha "$dest")" != "$(sha "$script")" ] && [ "$(sha "$dest")" != "$old" ]; then
      say "etc/mgrnotify/scripts/$name was changed by an operator: kept (the new version is not installed)"
      echo "script etc/mgrnotify/scripts/$name $old" >>"$new_manifest"
      continue
    fi
    install -m 0644 "$script" "$dest"
    echo "script etc/mgrnotify/scripts/$name $(sha "$script")" >>"$new_manifest"
  done

  mv -f "$new_manifest" "$MANIFEST"
  chmod 0644 "$MANIFEST"
  MGR_ROOT="$ROOT" "$ROOT/sbin/mgrnotify" sync
  say "installed into $ROOT"
}

uninstall_all() {
  if [ ! -f "$MANIFEST" ]; then
    echo "install.sh: nothing to uninstall: no $MANIFEST" >&2
    exit 1
  fi
  local kind rel sum f
  while read -r kind rel sum; do
    case "$kind" in
      link) if is_our_link "$ROOT/$rel"; then rm -f "$ROOT/$rel"; fi ;;
      script)
        f="$ROOT/$rel"
        if [ -f "$f" ] && [ "$(sha "$f")" = "$sum" ]; then
          rm -f "$f"
        elif [ -f "$f" ]; then
          say "$rel was changed by an operator: kept"
        fi ;;
    esac
  done <"$MANIFEST"
  # What `mgrnotify sync` made for any script: gate symlinks to the binary and marked
  # plugin XML. Without the binary they would only confuse BILLmanager.
  for f in "$ROOT"/gate/gw*; do
    if is_our_link "$f"; then rm -f "$f"; fi
  done
  for f in "$ROOT"/etc/xml/billmgr_mod_gw*.xml; do
    if [ -f "$f" ] && head -n 3 "$f" | grep -q '^<!-- generated by mgrnotify sync'; then rm -f "$f"; fi
  done
  rm -f "$ROOT/sbin/mgrnotify" "$MANIFEST"
  rmdir "$ROOT/etc/mgrnotify/scripts" "$ROOT/etc/mgrnotify" 2>/dev/null || true
  say "uninstalled from $ROOT"
}

case "$MODE" in
  install) install_all ;;
  uninstall) uninstall_all ;;
esac
