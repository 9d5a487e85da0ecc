#!/usr/bin/env bash
# Smoke test through the installed symlinks: installs into a temp root with install.sh
# and drives every role as BILLmanager and an operator would.
#   tests/smoke.sh [BINARY]   (default: target/release/mgrnotify, built if missing)
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BINARY=${1:-${CARGO_TARGET_DIR:-$HERE/target}/release/mgrnotify}
[ -x "$BINARY" ] || (cd "$HERE" && cargo build --release --locked --quiet)
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
passed=0
failed=0

check() { # check NAME COMMAND... : passes when the command succeeds
  local name=$1; shift
  if "$@" >"$ROOT/.out" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$ROOT/.out" | head -20
  fi
}
# run REL ARGS... <stdin: runs a role as BILLmanager does (cwd = root).
run() { local rel=$1; shift; (cd "$ROOT" && env -u MGR_ROOT "./$rel" "$@"); }
has() { grep -q -- "$1" "$ROOT/.got"; }
expect() { # expect PATTERN EXIT REL ARGS... : output has PATTERN, exit code EXIT
  local pattern=$1 code=$2; shift 2
  run "$@" </dev/null >"$ROOT/.got" 2>&1; local got=$?
  [ "$got" = "$code" ] || { echo "exit $got, wanted $code"; cat "$ROOT/.got"; return 1; }
  has "$pattern" || { echo "no '$pattern' in:"; cat "$ROOT/.got"; return 1; }
}

# A piece of BILLmanager that must survive install and uninstall.
mkdir -p "$ROOT/etc" "$ROOT/notify" "$ROOT/etc/xml"
echo "DBHost localhost" >"$ROOT/etc/billmgr.conf"
printf '#!/bin/sh\necho pager\n' >"$ROOT/notify/ntpager"; chmod +x "$ROOT/notify/ntpager"
echo "<mgrdata/>" >"$ROOT/etc/xml/billmgr_mod_gwpager.xml"

check "install.sh installs" "$HERE/install.sh" --root "$ROOT" --binary "$BINARY"
check "install.sh again is idempotent" "$HERE/install.sh" --root "$ROOT" --binary "$BINARY"
# Every role of the binary's table (its --help lists them), and the bundled script.
roles=$("$ROOT/sbin/mgrnotify" --help | sed -n 's,^  \(notify/[a-z0-9_]*\|gate/[a-z0-9_]*\) .*,\1,p')
check "--help lists the roles" test -n "$roles"
for r in $roles gate/gwepochta; do
  check "symlink $r" test "$(readlink "$ROOT/$r")" = ../sbin/mgrnotify
done
check "plugin XML for gwepochta" grep -q '<plugin name="gwepochta">' "$ROOT/etc/xml/billmgr_mod_gwepochta.xml"

check "ntsms features" expect '<contact_type>phone</contact_type>' 0 notify/ntsms --command features
check "ntemail features" expect '<contact_type>email</contact_type>' 0 notify/ntemail --command features
check "ntinternal features" expect '<feature name="html"/>' 0 notify/ntinternal --command features
for g in gwimap gwpop3; do
  check "$g features" expect '<feature name="ingoing"/>' 0 gate/$g --command features
done
check "gwsmtp features" expect '<notify_module>ntemail</notify_module>' 0 gate/gwsmtp --command features
gwsmtp_down() {
  run gate/gwsmtp --command outgoing >"$ROOT/.got" 2>&1 <<'XML'
<doc><gateway><xmlparams><host>127.0.0.1</host><port>1</port><security>none</security><from_email>b@shop.test</from_email></xmlparams></gateway><message>m</message><user><email>a@client.test</email></user></doc>
XML
  [ $? = 1 ] && has '<error type="gateway"' && has 'cannot connect to 127.0.0.1:1'
}
check "gwsmtp: a server that is down is error XML" gwsmtp_down
check "plugin XML for gwsmtp" grep -q '<plugin name="gwsmtp">' "$ROOT/etc/xml/billmgr_mod_gwsmtp.xml"
check "gwepochta features" expect '<feature name="outgoing"/>' 0 gate/gwepochta --command features
check "gwepochta notify_module" expect '<notify_module>ntsms</notify_module>' 0 gate/gwepochta --command features
check "gwepochta unknown command" expect '<error type="unknown"' 1 gate/gwepochta --command nonsense
check "gwepochta empty outgoing" expect '<error type="xml"' 1 gate/gwepochta --command outgoing
outgoing() {
  run gate/gwepochta --command outgoing >"$ROOT/.got" 2>&1 <<XML
<doc><gateway><id>1</id><xmlparams>&lt;doc&gt;&lt;login&gt;demo&lt;/login&gt;&lt;password&gt;Sm0keSecret&lt;/password&gt;&lt;sender&gt;Shop&lt;/sender&gt;&lt;api_url&gt;http://127.0.0.1:1&lt;/api_url&gt;&lt;/doc&gt;</xmlparams></gateway>
<message>Hello</message><user><id>7</id><phone>+79990000000</phone></user><project><id>1</id></project></doc>
XML
  local code=$?
  [ "$code" != 0 ] && has '<error' && ! has Sm0keSecret && ! grep -q Sm0keSecret "$ROOT/var/gwepochta.log"
}
check "gwepochta outgoing to a dead provider: error XML, no secret" outgoing
check "gwepochta log written" test -s "$ROOT/var/gwepochta.log"
check "unknown role exits 2" bash -c "ln -sf ../sbin/mgrnotify '$ROOT/notify/ntnope'; cd '$ROOT'; ./notify/ntnope --command features; test \$? = 2"
rm -f "$ROOT/notify/ntnope"

check "mgrnotify list" expect 'gwepochta' 0 sbin/mgrnotify list
check "mgrnotify dry-run send" expect 'members/sms/xml.php' 0 sbin/mgrnotify send gwepochta --to +79990000000 --text Hello --dry-run
check "mgrnotify check script" expect 'gwepochta' 0 sbin/mgrnotify check "$ROOT/etc/mgrnotify/scripts/gwepochta.rhai"

cp "$ROOT/etc/mgrnotify/scripts/gwepochta.rhai" "$ROOT/etc/mgrnotify/scripts/gwsmoke.rhai"
check "sync adds a provider" expect 'gate/gwsmoke' 0 sbin/mgrnotify sync
check "new provider answers" expect '<feature name="outgoing"/>' 0 gate/gwsmoke --command features
check "its plugin XML" test -f "$ROOT/etc/xml/billmgr_mod_gwsmoke.xml"
rm "$ROOT/etc/mgrnotify/scripts/gwsmoke.rhai"
check "sync removes it" expect 'removed' 0 sbin/mgrnotify sync
check "its symlink is gone" test ! -e "$ROOT/gate/gwsmoke"
check "its XML is gone" test ! -e "$ROOT/etc/xml/billmgr_mod_gwsmoke.xml"

check "uninstall" "$HERE/install.sh" --root "$ROOT" --uninstall
check "binary gone" test ! -e "$ROOT/sbin/mgrnotify"
check "symlinks gone" bash -c "! ls '$ROOT'/notify/ntsms '$ROOT'/gate/gwepochta 2>/dev/null"
check "plugin XML gone" test ! -e "$ROOT/etc/xml/billmgr_mod_gwepochta.xml" -a ! -e "$ROOT/etc/xml/billmgr_mod_gwsmtp.xml"
check "BILLmanager's files kept" test -f "$ROOT/etc/billmgr.conf" -a -x "$ROOT/notify/ntpager" -a -f "$ROOT/etc/xml/billmgr_mod_gwpager.xml"

echo
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
