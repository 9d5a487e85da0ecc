#!/usr/bin/env bash
# Builds mgrnotify and installs it into a BILLmanager root; see usage below.
set -euo pipefail

ROOT=/usr/local/mgr5
MODE=install
BUILD=1
BINARY=""
TAKE_OVER=""
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<'EOF'
Usage: ./install.sh [--root DIR] [--take-over ROLE,...] [--uninstall] [--no-build] [--binary PATH]

Builds mgrnotify (cargo build --release) and installs it into a BILLmanager root
(default /usr/local/mgr5): the binary as sbin/mgrnotify, a symlink for every role in
notify/ and gate/, the bundled provider scripts and their plugin XML. Idempotent: run
it again to upgrade; a bundled script an operator edited is kept.

  --root DIR            the BILLmanager root (default /usr/local/mgr5)
  --take-over ROLE,...  put mgrnotify in place of BILLmanager's own modules of these
                        roles (e.g. ntsms,gwsmtp); the originals are kept under
                        etc/mgrnotify/taken-over/ and restored by --uninstall
  --uninstall           restore what was taken over, byte for byte, and remove exactly
                        what was installed, and the folders install.sh made
  --no-build            install target/release/mgrnotify as it is
  --binary PATH         install this binary instead of building
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --take-over) TAKE_OVER=${2:?--take-over needs role names}; shift 2 ;;
    --take-over=*) TAKE_OVER=${1#--take-over=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --binary) BINARY=${2:?--binary needs a path}; BUILD=0; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$MODE" = uninstall ] && [ ! -d "$ROOT" ]; then
  echo "install.sh: nothing to uninstall: no $ROOT" >&2
  exit 1
fi
ROOT_MADE=0
[ -d "$ROOT" ] || ROOT_MADE=1
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
    say "building (release; the first build takes a few minutes)"
    (cd "$HERE" && cargo build --release --locked)
    BINARY="${CARGO_TARGET_DIR:-$HERE/target}/release/mgrnotify"
  fi
  [ -n "$BINARY" ] || BINARY="${CARGO_TARGET_DIR:-$HERE/target}/release/mgrnotify"
  [ -x "$BINARY" ] || { echo "install.sh: no binary at $BINARY" >&2; exit 1; }

  local new_manifest dir
  new_manifest=$(mktemp)
  # Folders made here (and by earlier installs) are removed by --uninstall when empty.
  grep -s '^dir ' "$MANIFEST" >>"$new_manifest" || true
  [ "$ROOT_MADE" = 1 ] && echo "dir ." >>"$new_manifest"
  for dir in sbin notify gate etc etc/xml var etc/mgrnotify etc/mgrnotify/scripts; do
    if [ ! -d "$ROOT/$dir" ]; then
      mkdir -p "$ROOT/$dir"
      echo "dir $dir" >>"$new_manifest"
    fi
  done
  # Replace the binary atomically: running modules keep their copy.
  install -m 0755 "$BINARY" "$ROOT/sbin/mgrnotify.new"
  mv -f "$ROOT/sbin/mgrnotify.new" "$ROOT/sbin/mgrnotify"
  echo "file sbin/mgrnotify" >>"$new_manifest"

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
  # The role symlinks and the scripts' plugin XML come from the binary's role table.
  # A module of BILLmanager's own where a link belongs is left alone unless taken over.
  if [ -n "$TAKE_OVER" ]; then
    MGR_ROOT="$ROOT" "$ROOT/sbin/mgrnotify" take-over "$TAKE_OVER"
  fi
  MGR_ROOT="$ROOT" "$ROOT/sbin/mgrnotify" sync ||
    say "some modules were left alone (see above); --take-over ROLE,... replaces them"
  say "installed into $ROOT"
}

uninstall_all() {
  if [ ! -f "$MANIFEST" ]; then
    echo "install.sh: nothing to uninstall: no $MANIFEST" >&2
    exit 1
  fi
  local kind rel sum f
  if [ -x "$ROOT/sbin/mgrnotify" ]; then
    MGR_ROOT="$ROOT" "$ROOT/sbin/mgrnotify" give-back --all
  fi
  while read -r kind rel sum; do
    case "$kind" in
      script)
        f="$ROOT/$rel"
        if [ -f "$f" ] && [ "$(sha "$f")" = "$sum" ]; then
          rm -f "$f"
        elif [ -f "$f" ]; then
          say "$rel was changed by an operator: kept"
        fi ;;
    esac
  done <"$MANIFEST"
  # What `mgrnotify sync` made: role symlinks to the binary and marked plugin XML.
  # Without the binary they would only confuse BILLmanager.
  for f in "$ROOT"/notify/* "$ROOT"/gate/*; do
    if is_our_link "$f"; then rm -f "$f"; fi
  done
  # The user-table addon files of declared types (etc/sql/billmgr.user.addon/) stay:
  # without them BILLmanager would drop the columns and the customers' addresses.
  for f in "$ROOT"/etc/xml/billmgr_mod_gw*.xml "$ROOT"/etc/xml/billmgr_mod_nt*.xml; do
    if [ -f "$f" ] && head -n 3 "$f" | grep -q '^<!-- generated by mgrnotify sync'; then rm -f "$f"; fi
  done
  rm -f "$ROOT/sbin/mgrnotify"
  local dirs
  dirs=$(grep '^dir ' "$MANIFEST" | cut -d' ' -f2- | sort -r || true)
  rm -f "$MANIFEST"
  # Deepest first ("." last); a folder that holds anything (logs, BILLmanager's
  # files) stays.
  while read -r rel; do
    if [ "$rel" = . ]; then rmdir "$ROOT" 2>/dev/null || true
    elif [ -n "$rel" ]; then rmdir "$ROOT/$rel" 2>/dev/null || true; fi
  done <<<"$dirs"
  rmdir "$ROOT/etc/mgrnotify/scripts" "$ROOT/etc/mgrnotify" 2>/dev/null || true
  say "uninstalled from $ROOT"
}

case "$MODE" in
  install) install_all ;;
  uninstall) uninstall_all ;;
esac
