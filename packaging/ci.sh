#!/bin/sh
# Packaging CI for nova-worker. Run as root on Debian 12 from the source tree:
#
#   packaging/ci.sh [OUTDIR]
#
# 1. makes the `make dist` tarball,
# 2. builds the .debs from it (build-deb.sh: dpkg-buildpackage -us -uc -b)
#    and the source package (dpkg-source -b),
# 3. runs lintian (errors and warnings fail; overrides carry their reasons),
# 4. installs them with apt-get and checks the installed daemon:
#    `nova-worker --version`, `nova-worker check -c /etc/nova-worker/nova-worker.conf`,
#    the shipped instance example, the sysusers account, the .pc file, the
#    Prometheus rules and Grafana dashboard (promtool checks the installed
#    rules when it is there), and the installed units with systemd-analyze
#    (verify, including the man pages they name, and the security score),
# 5. purges them again (maintainer scripts on removal),
# 6. builds the RPMs from the same tarball (build-rpm.sh), checks that they
#    hold the rules and the dashboard too, and runs rpmlint.
#
# Debian packages it needs (besides the build dependencies in
# packaging/debian/control): debhelper dpkg-dev fakeroot lintian rpm rpmlint
# systemd man-db git autoconf automake libtool pkgconf.
# It changes the system (installs, then purges nova-worker and
# nova-worker-dev; the nova-worker system account stays), so run it in a
# throwaway CI container.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/nova-ci.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
step() { printf '\n=== %s\n' "$*"; }
die() { echo "ci.sh: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get install, dpkg --purge)"
for tool in dpkg-buildpackage dh lintian rpmbuild rpmlint systemd-analyze man git autoreconf; do
    command -v $tool >/dev/null 2>&1 || die "$tool not found; see the package list at the top of $0"
done

step "dist tarball"
work=$(mktemp -d "${TMPDIR:-/tmp}/nova-ci-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
    tar --null --no-recursion -T - -cf -) | tar -xf - -C "$work"
(cd "$work" && ./autogen.sh >/dev/null && ./configure -q && make -s dist)
tarball=$(ls "$work"/nova-worker-*.tar.gz)
cp "$tarball" "$out/"
tarball="$out/$(basename "$tarball")"
echo "$tarball"

step "Debian packages"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out"/*.dsc "$out"/*.debian.tar.*
"$srcdir/packaging/build-deb.sh" -s -o "$out" "$tarball"
changes=$(ls "$out"/nova-worker_*.changes)
dsc=$(ls "$out"/nova-worker_*.dsc)

step "lintian"
lintian --fail-on error,warning --display-info "$changes" "$dsc"

step "install"
apt-get install -y -o DPkg::Lock::Timeout=300 "$out"/nova-worker_*.deb "$out"/nova-worker-dev_*.deb

step "installed daemon"
nova-worker --version
nova-worker check -c /etc/nova-worker/nova-worker.conf
getent passwd nova-worker | grep -q ':/var/lib/nova-worker:' ||
    die "postinst did not create the nova-worker account"
pkg-config --variable=plugindir nova-worker | grep -q '/nova-worker/plugins$' ||
    die "nova-worker.pc has no plugindir"
# The daemon links none of the service libraries; the modules that do are
# installed (docs/operations.md, "Service modules").
! ldd /usr/sbin/nova-worker | grep -E 'libpq|libcurl' ||
    die "/usr/sbin/nova-worker links a service library"
for m in pg http; do
    dpkg -L nova-worker | grep -q "/nova-worker/modules/nova-$m.so$" || die "nova-$m.so is not packaged"
done
# Monitoring (docs/operations.md, "Alerts and dashboard").
monitoring="/usr/share/nova-worker/prometheus/nova-worker.rules.yml /usr/share/nova-worker/grafana/nova-worker.json"
for f in $monitoring; do
    dpkg -L nova-worker | grep -qx "$f" || die "$f is not in the nova-worker package"
done
if command -v promtool >/dev/null 2>&1; then
    promtool check rules /usr/share/nova-worker/prometheus/nova-worker.rules.yml ||
        die "the installed rules do not pass promtool check rules"
fi
# The shipped instance example works against the shipped main file.
example=/usr/share/doc/nova-worker/examples/instance.conf.example
cp "$example" /etc/nova-worker/instances/ci.conf
nova-worker check -c /etc/nova-worker/instances/ci.conf
rm -f /etc/nova-worker/instances/ci.conf

step "installed units"
units=$(dpkg -L nova-worker | grep '/systemd/system/nova-worker[^/]*$' | sort)
[ "$(echo "$units" | wc -l)" -eq 3 ] || die "expected 3 units, found: $units"
# --man=yes: the man pages named by Documentation= must exist.
for u in nova-worker.service nova-worker@ci.service nova-worker.target; do
    msg=$(systemd-analyze verify "$u" 2>&1) || die "verify $u: $msg"
    [ -z "$msg" ] || die "verify $u printed: $msg"
done
for f in $(echo "$units" | grep '\.service$'); do
    systemd-analyze security --offline=yes --threshold=20 "$f" | tail -1
done

step "purge"
dpkg --purge nova-worker-dev nova-worker
[ ! -e /usr/sbin/nova-worker ] || die "/usr/sbin/nova-worker left after purge"
[ ! -e /etc/nova-worker/nova-worker.conf ] || die "conffile left after purge"

step "RPM packages"
rm -f "$out"/*.rpm
"$srcdir/packaging/build-rpm.sh" -o "$out" "$tarball"
rpm=$(ls "$out"/nova-worker-[0-9]*.rpm | grep -v '\.src\.rpm$' | head -n1)
for f in $monitoring; do
    rpm -qlp "$rpm" | grep -qx "$f" || die "$f is not in $rpm"
done
rpmlint -c "$srcdir/packaging/rpm/rpmlint.toml" "$out"/*.rpm

step "all packaging checks passed; artefacts in $out"
