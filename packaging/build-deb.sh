#!/bin/sh
# Builds the nova-worker Debian packages from a `make dist` tarball.
#
#   packaging/build-deb.sh [-s] [-o OUTDIR] [TARBALL]
#
# Without TARBALL, the tarball is made first from this source tree (tracked
# and untracked-but-not-ignored files) in a temporary directory. The
# tarball is unpacked in a temporary directory, packaging/debian is copied
# to debian/ there (the source tree never gets a top-level debian/), and
# `dpkg-buildpackage -us -uc -b` builds nova-worker and nova-worker-dev.
# The .deb, .changes and .buildinfo files land in OUTDIR (default: the
# current directory). With -s, the source package (.dsc, .orig.tar.gz,
# .debian.tar.xz) is built too, with dpkg-source before the binary build.
#
# DEB_BUILD_OPTIONS is passed through: `nocheck` also skips the server-free
# tests that otherwise run during the build (packaging/tests/*.sh).
set -eu

outdir=$PWD
source=no
while getopts so: opt; do
    case $opt in
    o) outdir=$OPTARG ;;
    s) source=yes ;;
    *) echo "usage: $0 [-s] [-o OUTDIR] [TARBALL]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/nova-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

tarball=$("$srcdir/packaging/dist-tarball.sh" "$work" "$@")

base=$(basename "$tarball" .tar.gz)   # nova-worker-VERSION
version=${base#nova-worker-}
mkdir "$work/build"
tar -xzf "$tarball" -C "$work/build"
ln -s "$tarball" "$work/build/nova-worker_$version.orig.tar.gz"
tree="$work/build/$base"
[ -d "$tree/packaging/debian" ] || { echo "build-deb: $tarball has no packaging/debian" >&2; exit 1; }
cp -a "$tree/packaging/debian" "$tree/debian"

# Building a version the changelog does not name yet (a snapshot): add an
# entry so the package version follows the tarball.
top=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Version)
if [ "${top%-*}" != "$version" ]; then
    {
        printf 'nova-worker (%s-0~snapshot1) UNRELEASED; urgency=medium\n\n' "$version"
        printf '  * Snapshot build of %s.\n\n' "$base"
        printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Maintainer)" \
            "$(date -R)"
        cat "$tree/debian/changelog"
    } >"$tree/debian/changelog.new"
    mv "$tree/debian/changelog.new" "$tree/debian/changelog"
fi

if [ $source = yes ]; then
    (cd "$work/build" && dpkg-source -b "$base")
    cp -L "$work"/build/*.dsc "$work"/build/*.orig.tar.gz "$work"/build/*.debian.tar.* "$outdir"/
fi
(cd "$tree" && dpkg-buildpackage -us -uc -b)
cp "$work"/build/*.deb "$work"/build/*.changes "$work"/build/*.buildinfo "$outdir"/
ls -1 "$outdir"/*.deb
