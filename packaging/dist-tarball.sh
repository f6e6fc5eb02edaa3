#!/bin/sh
# Prints the path of the release tarball the package builds start from:
# the given TARBALL, or one made with `make dist` from a copy of this
# checkout's files (tracked and untracked, not ignored) inside WORKDIR.
#   usage: dist-tarball.sh WORKDIR [TARBALL]
set -eu
work=$1
srcdir=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 2 ]; then
    tarball=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
else
    echo "dist-tarball: making the dist tarball from $srcdir" >&2
    mkdir "$work/src"
    (cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
        tar --null --no-recursion -T - -cf -) | tar -xf - -C "$work/src"
    (cd "$work/src" && ./autogen.sh >/dev/null 2>&1 && ./configure -q && make -s dist) >&2
    tarball=$(ls "$work"/src/nova-worker-*.tar.gz)
fi
[ -f "$tarball" ] || { echo "dist-tarball: no tarball $tarball" >&2; exit 1; }
echo "$tarball"
