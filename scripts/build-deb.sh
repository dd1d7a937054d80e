#!/usr/bin/env bash
# Builds the pantau Debian package into dist/: the binary with the Swift runtime linked in, the device profiles,
# the example configuration (a conffile), the hardened systemd unit, the sysusers entry and the maintainer scripts.
#
#   scripts/build-deb.sh                       # swift build -c release --static-swift-stdlib, then package it
#   scripts/build-deb.sh --binary PATH         # package a binary built elsewhere (an arm64 board, a container)
#
# Options: --version V (else $PANTAU_VERSION, else `pantau --version`), --arch A (else read from the binary),
# --out DIR (default dist/), --no-strip. Installation, upgrade and arm64 builds: docs/install.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BINARY=""
VERSION="${PANTAU_VERSION:-}"
ARCH=""
OUT="$ROOT/dist"
STRIP=1
MAINTAINER="${PANTAU_MAINTAINER:-Pantau project <noreply@pantau.invalid>}"

die() { echo "build-deb: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BINARY="$2"; shift 2 ;;
        --version) VERSION="$2"; shift 2 ;;
        --arch) ARCH="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-strip) STRIP=0; shift ;;
        -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

for tool in dpkg-deb readelf; do
    command -v "$tool" >/dev/null || die "'$tool' is missing: apt-get install dpkg-dev binutils"
done

if [ -z "$BINARY" ]; then
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product pantau)
    BINARY="$(cd "$ROOT" && swift build -c release --static-swift-stdlib --show-bin-path)/pantau"
fi
[ -x "$BINARY" ] || die "no executable at '$BINARY'"

# The package promises a binary that runs without a Swift toolchain on the board.
if readelf -d "$BINARY" | grep -E 'NEEDED.*\[lib(swift|Foundation|dispatch|BlocksRuntime)' >/dev/null; then
    die "'$BINARY' links the Swift runtime dynamically; build it with: swift build -c release --static-swift-stdlib"
fi

if [ -z "$ARCH" ]; then
    machine="$(readelf -h "$BINARY" | sed -n 's/^ *Machine: *//p')"
    case "$machine" in
        *X86-64*) ARCH=amd64 ;;
        AArch64) ARCH=arm64 ;;
        ARM) ARCH=armhf ;;
        RISC-V) ARCH=riscv64 ;;
        *) die "cannot map ELF machine '$machine' to a Debian architecture; pass --arch" ;;
    esac
fi

if [ -z "$VERSION" ] && [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
    # `pantau --version` prints the release; take its first word that looks like a Debian upstream version.
    VERSION="$("$BINARY" --version 2>/dev/null | tr -s ' \t' '\n\n' \
        | grep -E '^[0-9][A-Za-z0-9.+~-]*$' | head -n1 || true)"
fi
[ -n "$VERSION" ] || die "cannot tell the version: pass --version or set PANTAU_VERSION"
echo "$VERSION" | grep -Eq '^[0-9][A-Za-z0-9.+~-]*$' || die "'$VERSION' is not a Debian version"

STAGE="$(mktemp -d)"
chmod 0755 "$STAGE"
SHLIBS_DIR="$(mktemp -d)"
trap 'rm -rf "$STAGE" "$SHLIBS_DIR"' EXIT

install -D -m 0755 "$BINARY" "$STAGE/usr/bin/pantau"
if [ "$STRIP" = 1 ]; then
    # Debug info only: the symbol table stays, so Swift's crash backtraces on the board still name functions.
    strip --strip-debug "$STAGE/usr/bin/pantau" 2>/dev/null \
        || echo "build-deb: strip cannot read this $ARCH binary; packaging it unstripped" >&2
fi

install -d -m 0755 "$STAGE/usr/share/pantau/firmware-profiles"
for profile in "$ROOT"/firmware-profiles/*.yaml; do
    if [ -e "$profile" ]; then install -m 0644 "$profile" "$STAGE/usr/share/pantau/firmware-profiles/"; fi
done

# 0640 in the archive so it is never world-readable, even before postinst sets its group (it may hold credentials).
install -d -m 0750 "$STAGE/etc/pantau"
if [ -f "$ROOT/examples/gateway.yaml" ]; then
    install -m 0640 "$ROOT/examples/gateway.yaml" "$STAGE/etc/pantau/gateway.yaml"
else
    echo "build-deb: examples/gateway.yaml not found; the package ships no /etc/pantau/gateway.yaml" >&2
fi

install -D -m 0644 "$ROOT/systemd/pantau.service" "$STAGE/lib/systemd/system/pantau.service"
install -D -m 0644 "$ROOT/systemd/pantau.sysusers" "$STAGE/usr/lib/sysusers.d/pantau.conf"
DOC="$STAGE/usr/share/doc/pantau"
install -D -m 0644 "$ROOT/systemd/99-pantau-serial.rules" "$DOC/examples/99-pantau-serial.rules"
if [ -f "$ROOT/examples/gateway.yaml" ]; then
    install -m 0644 "$ROOT/examples/gateway.yaml" "$DOC/examples/gateway.yaml"
fi
install -m 0644 "$ROOT/docs/install.md" "$DOC/install.md"
if [ -f "$ROOT/LICENSE" ]; then install -m 0644 "$ROOT/LICENSE" "$DOC/copyright"; fi

install -d -m 0755 "$STAGE/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$ROOT/packaging/$script" "$STAGE/DEBIAN/$script"
done
# Only conffiles the package really ships: dpkg-deb refuses a conffile that is missing.
while read -r conffile; do
    if [ -n "$conffile" ] && [ -f "$STAGE$conffile" ]; then echo "$conffile"; fi
done < "$ROOT/packaging/conffiles" > "$STAGE/DEBIAN/conffiles"
if [ ! -s "$STAGE/DEBIAN/conffiles" ]; then rm "$STAGE/DEBIAN/conffiles"; fi

# Dependencies from the libraries the binary really links, with the minimum versions their symbols need.
FALLBACK_DEPENDS="libc6 (>= 2.36), libgcc-s1, libstdc++6 (>= 12), libmodbus5 (>= 3.1.6), libmosquitto1 (>= 2.0.11),"
FALLBACK_DEPENDS="$FALLBACK_DEPENDS libsqlite3-0 (>= 3.40.0), libyaml-0-2"
DEPENDS=""
if command -v dpkg-shlibdeps >/dev/null; then
    mkdir -p "$SHLIBS_DIR/debian"
    printf 'Source: pantau\n\nPackage: pantau\nArchitecture: any\n' > "$SHLIBS_DIR/debian/control"
    DEPENDS="$(cd "$SHLIBS_DIR" && dpkg-shlibdeps -O "$STAGE/usr/bin/pantau" 2>/dev/null \
        | sed -n 's/^shlibs:Depends=//p')" || DEPENDS=""
fi
if [ -z "$DEPENDS" ]; then
    echo "build-deb: dpkg-shlibdeps unavailable for $ARCH; using fixed minimum versions" >&2
    DEPENDS="$FALLBACK_DEPENDS"
fi

INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" -e "s|@DEPENDS@|$DEPENDS|" \
    "$ROOT/packaging/control.in" > "$STAGE/DEBIAN/control"

mkdir -p "$OUT"
DEB="$OUT/pantau_${VERSION}_${ARCH}.deb"
dpkg-deb --build --root-owner-group "$STAGE" "$DEB" >/dev/null
echo "$DEB"
