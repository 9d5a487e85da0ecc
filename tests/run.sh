#!/usr/bin/env bash
# Runs every test of mgrnotify on a fresh Debian 12 machine or a developer's one:
# installs what the tests need (Debian and npm packages), checks formatting and lints,
# builds, runs the shell smoke test through an installed root, then the Rust tests.
# The tests start their own servers (a private MariaDB, an SMTP server, dovecot, fake providers on loopback)
# unless MGRNOTIFY_TEST_DB_URL names a database server to use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages: libxslt (XSLT templates, loaded at run time), a C compiler (QuickJS), MariaDB (the
# queue's tests), Node.js and npm (the EJS differential test), Python (a third-party
# gateway written in Python), valgrind (libxslt objects freed on every path).
need=()
[ -n "$(ldconfig -p 2>/dev/null | grep 'libxslt\.so\.1 ')" ] || need+=(libxslt1.1)
command -v cc >/dev/null || need+=(gcc)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3)
# The SMTP server of the email tests (tests/smtp_server.py) and its test certificates.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
command -v openssl >/dev/null || need+=(openssl)
# The IMAP and POP3 server of the incoming mail tests (tests/common/dovecot.rs).
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d)
command -v valgrind >/dev/null || need+=(valgrind)
# The XMPP server of the Jabber tests (tests/common/prosody.rs starts a private one).
command -v prosody >/dev/null || need+=(prosody)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -f tests/ejs/package-lock.json ] && [ ! -d tests/ejs/node_modules/ejs ]; then
  (cd tests/ejs && npm ci --silent --no-audit --no-fund)
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --release
tests/smoke.sh "${CARGO_TARGET_DIR:-target}/release/mgrnotify"
# Every libxml2/libxslt object freed: the render bench, a few rounds, under valgrind.
render=$(cargo bench --locked --bench render --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p')
RENDER_BENCH_ITERATIONS=20 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --error-exitcode=9 "$render" >/dev/null
echo "valgrind: render bench, no leaks"
cargo test --locked
