#!/usr/bin/env bash
# Builds the virtplane OCI image (all four daemons and virtctl, QEMU and the network tools)
# without a container engine and without pulling a base image: static binaries from cargo,
# a Debian rootfs from mmdebstrap, assembled by umoci into an OCI layout directory.
#
#   deploy/container/build.sh [--out DIR] [--tag TAG] [--archive FILE] [--profile PROFILE]
#                             [--cache-dir DIR] [--refresh-rootfs] [--rootfs-max-age DAYS]
#
#   --out DIR             the OCI layout to write (default target/container/oci); replaced
#                         only once the new image is complete
#   --tag TAG             the image's tag in the layout (default dev: `oci:DIR:dev`)
#   --archive FILE        also write a docker-archive tarball named virtplane:TAG (skopeo)
#                         for `kind load image-archive`, `docker load`, `ctr images import`
#   --profile PROFILE     cargo profile of the binaries (default release)
#   --cache-dir DIR       where the Debian rootfs tarball is kept between builds (default
#                         target/container/cache, or $VIRTPLANE_CONTAINER_CACHE)
#   --refresh-rootfs      make the rootfs anew even if a cached one matches
#   --rootfs-max-age DAYS a cached rootfs older than this is made anew, so security updates
#                         reach the image (default 7)
#
# Needs root (mmdebstrap's root mode), mmdebstrap, umoci, file, strip, and skopeo for --archive:
#   apt-get install mmdebstrap umoci skopeo file binutils
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$repo/target/container/oci
tag=dev
archive=
profile=release
cache_dir=${VIRTPLANE_CONTAINER_CACHE:-$repo/target/container/cache}
refresh_rootfs=0
rootfs_max_age_days=7

# The non-root user the image runs as unless told otherwise (distroless's "nonroot" uid).
# The gateway and the storage service run as it; the domain and network services need root
# (QEMU, /dev/kvm, taps, bridges, nftables), which the pod spec asks for.
readonly image_uid=65532
readonly target_triple=x86_64-unknown-linux-gnu
readonly binaries=(virtplane-domaind virtplane-networkd virtplane-storaged virtplane-gateway virtctl)
readonly suite=bookworm
readonly mirror=${VIRTPLANE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly security_mirror=${VIRTPLANE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# What the daemons run at runtime (see services/*/src):
#   domain: qemu-system-x86_64 (QEMU's firmware comes along as its dependencies);
#   storage: qemu-img (qemu-utils, from the same QEMU build as the emulator: one suite set);
#   network: dnsmasq (dnsmasq-base), nft (nftables); bridges and addresses go over netlink,
#   iproute2's `ip` is there for operators debugging a node;
#   ca-certificates for TLS to the services when their CA is a public one.
readonly packages=(qemu-system-x86 qemu-utils dnsmasq-base nftables iproute2 ca-certificates)

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --out=*) out=${1#*=}; shift ;;
        --tag) tag=${2:?--tag needs a name}; shift 2 ;;
        --tag=*) tag=${1#*=}; shift ;;
        --archive) archive=${2:?--archive needs a file}; shift 2 ;;
        --archive=*) archive=${1#*=}; shift ;;
        --profile) profile=${2:?--profile needs a cargo profile}; shift 2 ;;
        --profile=*) profile=${1#*=}; shift ;;
        --cache-dir) cache_dir=${2:?--cache-dir needs a directory}; shift 2 ;;
        --cache-dir=*) cache_dir=${1#*=}; shift ;;
        --refresh-rootfs) refresh_rootfs=1; shift ;;
        --rootfs-max-age) rootfs_max_age_days=${2:?--rootfs-max-age needs a number of days}; shift 2 ;;
        --rootfs-max-age=*) rootfs_max_age_days=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] \
    || die "--tag '$tag' is not a valid tag (letters, digits, '.', '_', '-'; at most 128)"
[[ $rootfs_max_age_days =~ ^[0-9]+$ ]] \
    || die "--rootfs-max-age '$rootfs_max_age_days' is not a whole number of days"
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap makes the rootfs in root mode)"

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install $2"
}
need mmdebstrap mmdebstrap
need umoci umoci
need file file
need ldd libc-bin
need strip binutils
[ -z "$archive" ] || need skopeo skopeo

log() {
    echo "build.sh: $*" >&2
}

mkdir -p "$cache_dir" "$(dirname "$out")"
cache_dir=$(cd "$cache_dir" && pwd)
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# One build at a time per output (a CI step and a test may both ask for the image).
exec 9>"$out.lock"
flock --wait 7200 9 || die "another build.sh still holds $out.lock after 2 hours"
work=$(mktemp -d "$(dirname "$out")/.build.XXXXXX")
trap 'rm -rf "$work" "$out.new"' EXIT

# --- 1. static binaries ------------------------------------------------------------------
# crt-static with an explicit --target: the flag then applies only to the target's code, not
# to build scripts and proc macros (which must stay dynamic). musl would be the usual choice,
# but its target is not installable here; a static glibc binary runs on any rootfs.
started=$SECONDS
log "building ${binaries[*]} (static, profile $profile)"
bin_args=()
for binary in "${binaries[@]}"; do
    bin_args+=(--bin "$binary")
done
# CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS (the static check below would catch it).
(cd "$repo" && env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS='-C target-feature=+crt-static' \
    timeout 90m cargo build --quiet --profile "$profile" --target "$target_triple" "${bin_args[@]}")
case $profile in
    dev) profile_dir=debug ;;
    *) profile_dir=$profile ;;
esac
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in
    /*) ;;
    *) target_dir=$repo/$target_dir ;;
esac
bin_dir=$target_dir/$target_triple/$profile_dir
for binary in "${binaries[@]}"; do
    path=$bin_dir/$binary
    [ -x "$path" ] || die "$path was not built"
    description=$(file -b "$path")
    case $description in
        *interpreter*|*"dynamically linked"*)
            die "$path is not static ($description): is RUSTFLAGS overridden by a .cargo/config target.rustflags?" ;;
        *"statically linked"*|*"static-pie linked"*) ;;
        *) die "$path: cannot tell whether it is static from file(1): $description" ;;
    esac
    # ldd asks the dynamic loader itself; it exits non-zero for a static binary.
    if linked=$(ldd "$path" 2>&1); then
        case $linked in
            *"statically linked"*) ;;
            *) die "$path needs shared libraries: $linked" ;;
        esac
    fi
done
log "binaries: $((SECONDS - started)) s"

# --- 2. the Debian rootfs, cached by everything that shapes it -------------------------
# Essential packages plus the runtime tools, without Recommends (mmdebstrap's default), apt or
# documentation; the packages come from one release's suites so qemu-img and the emulator
# are the same QEMU build.
mmdebstrap_args=(
    --variant=essential
    --mode=root
    --format=tar
    # usr-is-merged satisfies init-system-helpers' `usrmerge | usr-is-merged` (the rootfs is
    # merged-/usr from the start), so usrmerge and the perl it drags in (~50 MB) can go.
    --include="usr-is-merged,$(IFS=,; echo "${packages[*]}")"
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    # The image's user, its home and working dir, the mount points the daemons use.
    --customize-hook="echo 'virtplane:x:$image_uid:$image_uid:virtplane:/var/lib/virtplane:/usr/sbin/nologin' >> \"\$1/etc/passwd\""
    --customize-hook="echo 'virtplane:x:$image_uid:' >> \"\$1/etc/group\""
    --customize-hook="install -d -m 0755 -o $image_uid -g $image_uid \"\$1/var/lib/virtplane\" \"\$1/run/virtplane\""
    --customize-hook="install -d -m 0755 \"\$1/etc/virtplane\""
    --customize-hook='chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl libperl5.36 perl-modules-5.36 >/dev/null'
    # Host specifics mmdebstrap copied in for apt; the container runtime provides its own.
    --customize-hook="rm -f \"\$1/etc/resolv.conf\" \"\$1/etc/hostname\""
    "$suite"
)
sources=(
    "deb $mirror $suite main"
    "deb $mirror $suite-updates main"
    "deb $security_mirror $suite-security main"
)
# v1: the format of this cache key; bump it when the rootfs changes in a way the arguments
# do not show.
key=$(printf '%s\n' v1 "${mmdebstrap_args[@]}" "${sources[@]}" | sha256sum | cut -c1-16)
rootfs=$cache_dir/rootfs-$key.tar
if [ "$refresh_rootfs" = 1 ] || [ ! -s "$rootfs" ] \
    || [ -n "$(find "$rootfs" -mtime "+$rootfs_max_age_days" -print)" ]; then
    started=$SECONDS
    log "making the Debian $suite rootfs with mmdebstrap (${packages[*]})"
    timeout 45m mmdebstrap --quiet "${mmdebstrap_args[@]}" "$work/rootfs.tar" "${sources[@]}" \
        || die "mmdebstrap failed (is $mirror reachable?)"
    # Device nodes: the container runtime mounts its own /dev, and an unprivileged unpacker
    # (rootless podman, a user namespace) cannot make them.
    tar --delete --wildcards -f "$work/rootfs.tar" './dev/?*' 2>/dev/null || true
    rm -f "$cache_dir"/rootfs-*.tar
    mv "$work/rootfs.tar" "$rootfs"
    log "rootfs: $((SECONDS - started)) s"
else
    log "reusing the rootfs $rootfs (made $(date -r "$rootfs" -u +%FT%TZ); --refresh-rootfs makes it anew)"
fi
qemu_version=$(tar -xOf "$rootfs" ./var/lib/dpkg/status \
    | awk '/^Package: / { p = $2 } /^Version: / && p == "qemu-system-x86" { print $2 }')
[ -n "$qemu_version" ] || die "$rootfs has no qemu-system-x86 (a broken cached rootfs? use --refresh-rootfs)"

# --- 3. the OCI image: the rootfs layer, the binaries layer, the config -----------------
started=$SECONDS
image=$out.new:$tag
rm -rf "$out.new"
umoci init --layout "$out.new"
umoci new --image "$image"
umoci raw add-layer --image "$image" --history.created_by "mmdebstrap $suite: ${packages[*]}" \
    "$rootfs"

mkdir -p "$work/bin/usr/local/bin"
# Without their line tables (a quarter of the size; backtraces keep function names).
for binary in "${binaries[@]}"; do
    strip --strip-debug -o "$work/bin/usr/local/bin/$binary" "$bin_dir/$binary"
    chmod 0755 "$work/bin/usr/local/bin/$binary"
done
tar --create --file "$work/bin.tar" --directory "$work/bin" --numeric-owner --owner=0 --group=0 \
    --mtime=@0 --sort=name "${binaries[@]/#/usr/local/bin/}"
umoci raw add-layer --image "$image" --history.created_by "virtplane binaries ($profile)" \
    "$work/bin.tar"

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml")
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    revision=$revision-dirty
fi
created=$(date -u +%FT%TZ)
# No entrypoint: the command picks the daemon (`args: [virtplane-gateway, --tokens, ...]` in
# a pod). Without one, virtctl prints its help.
umoci config --image "$image" --no-history \
    --architecture amd64 --os linux \
    --author virtplane \
    --created "$created" \
    --config.user "$image_uid:$image_uid" \
    --config.workingdir /var/lib/virtplane \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd virtctl --config.cmd --help \
    --config.stopsignal SIGTERM \
    --config.label org.opencontainers.image.title=virtplane \
    --config.label "org.opencontainers.image.description=virtplane daemons (domaind, networkd, storaged, gateway) and virtctl, with QEMU, dnsmasq and nftables" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.revision=$revision" \
    --config.label "org.opencontainers.image.created=$created" \
    --config.label org.opencontainers.image.licenses=Apache-2.0 \
    --config.label "org.opencontainers.image.ref.name=$tag" \
    --config.label "io.virtplane.debian-suite=$suite" \
    --config.label "io.virtplane.qemu-version=$qemu_version"
umoci gc --layout "$out.new"

rm -rf "$out.old"
[ ! -e "$out" ] || mv "$out" "$out.old"
mv "$out.new" "$out"
rm -rf "$out.old"
log "image: $((SECONDS - started)) s"

if [ -n "$archive" ]; then
    mkdir -p "$(dirname "$archive")"
    rm -f "$archive"
    timeout 10m skopeo copy --quiet "oci:$out:$tag" "docker-archive:$archive:virtplane:$tag"
    log "wrote $archive (virtplane:$tag)"
fi

size=$(du -sh "$out" | cut -f1)
echo "virtplane:$tag -> oci:$out:$tag ($size; QEMU $qemu_version)"
