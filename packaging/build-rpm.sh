#!/bin/sh
# Builds the nova-worker RPMs (and SRPM) from a `make dist` tarball with
# packaging/rpm/nova-worker.spec.
#
#   packaging/build-rpm.sh [-o OUTDIR] [TARBALL]
#
# Without TARBALL, the tarball is made first from this source tree, as
# build-deb.sh does. The .rpm files land in OUTDIR (default: the current
# directory).
#
# On Fedora/EL, systemd-rpm-macros defines %_unitdir, %_sysusersdir,
# %systemd_post and friends. Debian's rpm does not, so this script defines
# the missing ones on the command line (never in the spec) and passes
# --nodeps, since Debian's rpm database knows none of the BuildRequires.
# Such RPMs are a smoke test of the spec; release RPMs are built on the
# target distribution.
set -eu

outdir=$PWD
while getopts o: opt; do
    case $opt in
    o) outdir=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR] [TARBALL]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/nova-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT

tarball=$("$srcdir/packaging/dist-tarball.sh" "$work" "$@")
base=$(basename "$tarball" .tar.gz)
version=${base#nova-worker-}

top="$work/rpmbuild"
mkdir -p "$top/SOURCES" "$top/SPECS"
cp "$tarball" "$top/SOURCES/"
# The spec and the sysusers file come from the tarball, so they match it.
tar -xzf "$tarball" -C "$work" "$base/packaging/rpm/nova-worker.spec" \
    "$base/packaging/systemd/nova-worker.sysusers"
cp "$work/$base/packaging/systemd/nova-worker.sysusers" "$top/SOURCES/"
spec="$top/SPECS/nova-worker.spec"
# A snapshot whose version the spec does not name yet: follow the tarball.
sed -e "s/^\(Version:[[:space:]]*\).*/\1$version/" \
    "$work/$base/packaging/rpm/nova-worker.spec" >"$spec"

set -- --define "_topdir $top"
missing() { [ -z "$(rpm --eval "%{?$1}")" ]; }
if missing _unitdir; then
    set -- "$@" --define "_unitdir /usr/lib/systemd/system"
fi
if missing _sysusersdir; then
    set -- "$@" --define "_sysusersdir /usr/lib/sysusers.d"
fi
if missing systemd_post; then
    set -- "$@" \
        --define 'systemd_post() if [ $1 -eq 1 ]; then systemctl --no-reload preset %{?*} >/dev/null 2>&1 || :; fi' \
        --define 'systemd_preun() if [ $1 -eq 0 ]; then systemctl --no-reload disable --now %{?*} >/dev/null 2>&1 || :; fi' \
        --define 'systemd_postun_with_restart() if [ $1 -ge 1 ]; then systemctl try-restart %{?*} >/dev/null 2>&1 || :; fi'
fi
if missing sysusers_create_compat; then
    set -- "$@" --define \
        'sysusers_create_compat() echo %{shescape:%(grep -v "^#" %1)} | systemd-sysusers --replace=%{_sysusersdir}/%{name}.conf - || :'
fi
if [ -r /etc/debian_version ]; then
    # Debian's rpm has no debuginfo setup, so the smoke build skips
    # debuginfo packages; its brp-compress needs bash, not dash.
    set -- "$@" --nodeps --define "debug_package %{nil}" --define "_buildshell /bin/bash" \
        --define "__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{?_prefix}"
fi

rpmbuild "$@" -ba "$spec"
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -exec cp {} "$outdir"/ \;
ls -1 "$outdir"/*.rpm
