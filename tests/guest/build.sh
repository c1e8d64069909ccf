#!/usr/bin/env bash
# Builds virtplane's test guest: Debian's kernel plus a busybox initramfs that runs
# the real qemu-guest-agent on the org.qemu.guest_agent.0 virtio-serial port.
#
# Usage: tests/guest/build.sh [OUTDIR]      (default: target/guest under the workspace)
#
# Output (in OUTDIR):
#   vmlinuz     Debian's linux-image-amd64 kernel, as shipped (bzImage)
#   vmlinux     the same kernel decompressed (ELF, PVH entry); boots ~4 s faster under TCG
#   initrd.img  gzip'd newc cpio: busybox, qemu-ga + its libraries, virtio modules, /init
#   rootfs.img  the same tree as a raw ext4 image, for booting with the root on a disk
#   debs/       downloaded .deb files (cache: downloaded only when missing)
#
# Network: only Debian's package mirrors, through apt (apt-get update / apt-get download).
# Idempotent: re-running with everything present rebuilds nothing.
set -euo pipefail

log() { printf 'guest-build: %s\n' "$*" >&2; }
die() { printf 'guest-build: ERROR: %s\n' "$*" >&2; exit 1; }

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORKSPACE="$(cd "$SCRIPT_DIR/../.." && pwd)"
OUT="${1:-$WORKSPACE/target/guest}"

for tool in apt-get apt-cache dpkg-deb ldd gzip find sort awk sed grep tr cmp; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' is missing (this script expects a Debian 12 host)"
done
if ! command -v xz >/dev/null 2>&1; then
    log "note: 'xz' is missing; vmlinux (decompressed kernel) will not be produced"
fi

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DEBS="$OUT/debs"
WORK="$OUT/work"
mkdir -p "$DEBS"

# Lock: two builds into the same directory (e.g. parallel tests) must not race.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT/.build.lock"
    flock 9
fi

# Fast path: everything already built from the current script → nothing to do.
STAMP="$OUT/.stamp"
SCRIPT_SUM="$(sha256sum "${BASH_SOURCE[0]}" | awk '{print $1}')"
if [[ -f "$STAMP" && -s "$OUT/vmlinuz" && -s "$OUT/initrd.img" && -s "$OUT/rootfs.img" && "$(cat "$STAMP")" == "$SCRIPT_SUM" ]]; then
    log "up to date: $OUT/vmlinuz $OUT/initrd.img (delete $STAMP to force a rebuild)"
    exit 0
fi

apt_updated=0
apt_update_once() {
    if [[ $apt_updated == 0 ]]; then
        log "apt-get update"
        apt-get update -qq >&2 || die "apt-get update failed (needs root and access to Debian's mirrors)"
        apt_updated=1
    fi
}

# candidate_version PKG → the version apt would download (empty if unknown)
candidate_version() {
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'
}

# fetch PKG → path of the cached .deb for PKG (downloads it when missing)
fetch() {
    local pkg="$1" deb ver
    deb="$(find "$DEBS" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)"
    if [[ -n "$deb" ]]; then
        printf '%s\n' "$deb"
        return
    fi
    ver="$(candidate_version "$pkg")"
    if [[ -z "$ver" || "$ver" == "(none)" ]]; then
        apt_update_once
        ver="$(candidate_version "$pkg")"
    fi
    [[ -n "$ver" && "$ver" != "(none)" ]] || die "package '$pkg' is unknown to apt (is this a Debian 12 amd64 host?)"
    log "apt-get download $pkg ($ver)"
    (cd "$DEBS" && apt-get download -q "$pkg" >&2 2>/dev/null) || {
        apt_update_once
        (cd "$DEBS" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
    }
    deb="$(find "$DEBS" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)"
    [[ -n "$deb" ]] || die "apt-get download $pkg produced no .deb in $DEBS"
    printf '%s\n' "$deb"
}

# deb_depends DEB → the package names in its Depends (alternatives: first one)
deb_depends() {
    dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep -v '^$' || true
}

extract() { # DEB DIR
    log "dpkg-deb -x $(basename "$1")"
    dpkg-deb -x "$1" "$2"
}

rm -rf "$WORK"
mkdir -p "$WORK/x"

# ---------------------------------------------------------------- kernel
# The kernel package's name comes from linux-image-amd64's dependency (not hard-coded).
meta_deb="$(fetch linux-image-amd64)"
kpkg="$(deb_depends "$meta_deb" | grep '^linux-image-' | head -n1)"
[[ -n "$kpkg" ]] || die "cannot find the kernel package in linux-image-amd64's Depends"
kdeb="$(fetch "$kpkg")"
extract "$kdeb" "$WORK/kernel"
vmlinuz_src="$(find "$WORK/kernel/boot" -name 'vmlinuz-*' -print -quit)"
[[ -n "$vmlinuz_src" ]] || die "no /boot/vmlinuz-* in $kdeb"
kver="${vmlinuz_src##*/vmlinuz-}"
kconfig="$WORK/kernel/boot/config-$kver"
moddir="$(find "$WORK/kernel" -type d -path "*/modules/$kver" -print -quit)"
[[ -n "$moddir" ]] || die "no modules directory for $kver in $kdeb"
log "kernel $kver"

# Decompressed kernel (xz payload inside the bzImage) → ELF vmlinux with a PVH entry point.
rm -f "$OUT/vmlinux"
if command -v xz >/dev/null 2>&1 && grep -q '^CONFIG_KERNEL_XZ=y' "$kconfig"; then
    off="$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$vmlinuz_src" | head -n1 | cut -d: -f1 || true)"
    if [[ -n "$off" ]]; then
        tail -c +"$((off + 1))" "$vmlinuz_src" | xz -dc 2>/dev/null >"$WORK/vmlinux" || true
        if [[ "$(head -c 4 "$WORK/vmlinux" | od -An -c | tr -d ' ')" == '177ELF' ]]; then
            mv "$WORK/vmlinux" "$OUT/vmlinux"
            log "decompressed kernel → $OUT/vmlinux"
        else
            log "note: could not decompress the kernel; only vmlinuz is produced"
        fi
    fi
fi
cp "$vmlinuz_src" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"

# ---------------------------------------------------------------- initramfs tree
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,run,tmp,etc,root,var/run,var/log,usr/bin,usr/sbin,lib/modules,lib64,usr/share/udhcpc}
chmod 1777 "$ROOT/tmp"

# busybox (static)
bbdeb="$(fetch busybox-static)"
extract "$bbdeb" "$WORK/x/busybox"
bb="$(find "$WORK/x/busybox" -type f -path "*/bin/busybox" -print -quit)"
[[ -n "$bb" ]] || die "no busybox binary in $bbdeb"
install -m 0755 "$bb" "$ROOT/bin/busybox"
for applet in $("$bb" --list); do
    [[ "$applet" == busybox ]] && continue
    [[ -e "$ROOT/bin/$applet" ]] || ln -s busybox "$ROOT/bin/$applet"
done

# qemu-ga and its libraries, taken from Debian's .debs (its Depends and theirs).
qgadeb="$(fetch qemu-guest-agent)"
extract "$qgadeb" "$WORK/x/qga"
qga="$WORK/x/qga/usr/sbin/qemu-ga"
[[ -x "$qga" ]] || die "no usr/sbin/qemu-ga in $qgadeb"
install -m 0755 "$qga" "$ROOT/usr/sbin/qemu-ga"

declare -A seen=()
libpkgs=()
for p in libc6 $(deb_depends "$qgadeb"); do
    [[ -n "${seen[$p]:-}" ]] && continue
    seen[$p]=1
    libpkgs+=("$p")
done
# one more level: the libraries' own library dependencies (glib → pcre2, ffi, mount, ...)
for p in "${libpkgs[@]}"; do
    for d in $(deb_depends "$(fetch "$p")"); do
        case "$d" in lib*|zlib1g) ;; *) continue ;; esac
        [[ "$d" == *-perl || "$d" == *-bin || "$d" == *-data ]] && continue
        [[ -n "${seen[$d]:-}" ]] && continue
        seen[$d]=1
        libpkgs+=("$d")
    done
done
LIBROOT="$WORK/x/libs"
for p in "${libpkgs[@]}"; do
    extract "$(fetch "$p")" "$LIBROOT"
done
libpath=""
for d in "$LIBROOT/lib/x86_64-linux-gnu" "$LIBROOT/usr/lib/x86_64-linux-gnu" "$LIBROOT/lib" "$LIBROOT/usr/lib"; do
    [[ -d "$d" ]] && libpath="${libpath:+$libpath:}$d"
done
log "resolving qemu-ga's libraries with ldd against: ${libpkgs[*]}"
ldd_out="$(LD_LIBRARY_PATH="$libpath" ldd "$qga")" || die "ldd $qga failed: $ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then
    die "qemu-ga needs libraries not found in the extracted packages:"$'\n'"$ldd_out"
fi
mkdir -p "$ROOT/lib/x86_64-linux-gnu"
while read -r lib; do
    [[ -n "$lib" ]] || continue
    base="$(basename "$lib")"
    # prefer the copy from the extracted Debian package (same name)
    src="$(find "$LIBROOT" -name "$base" -print -quit)"
    [[ -n "$src" ]] || src="$lib"
    cp -L "$src" "$ROOT/lib/x86_64-linux-gnu/$base"
    log "  lib $base ← ${src#"$WORK"/}"
done < <(awk '/=>/ && $3 ~ /^\// {print $3}' <<<"$ldd_out")
interp="$(awk '$1 ~ /^\/.*ld-linux/ {print $1}' <<<"$ldd_out" | head -n1)"
[[ -n "$interp" ]] || die "cannot find qemu-ga's dynamic loader in: $ldd_out"
ldso="$(find "$LIBROOT" -name "$(basename "$interp")" -type f -print -quit)"
[[ -n "$ldso" ]] || ldso="$(find "$LIBROOT" -name "$(basename "$interp")" -print -quit)"
[[ -n "$ldso" ]] || die "no $(basename "$interp") in libc6"
cp -L "$ldso" "$ROOT/lib/x86_64-linux-gnu/$(basename "$interp")"
ln -sf "../lib/x86_64-linux-gnu/$(basename "$interp")" "$ROOT/lib64/$(basename "$interp")"
# qemu-ga's guest-exec etc. are happier with a few ordinary files present
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
# root's password starts locked ('*'); guest-set-user-password replaces it through chpasswd.
printf 'root:*:19000:0:99999:7:::\n' >"$ROOT/etc/shadow"
chmod 0600 "$ROOT/etc/shadow"
chmod 0700 "$ROOT/root"
# The RTC (CONFIG_RTC_DRV_CMOS=y, /dev/rtc0) keeps UTC, as QEMU's default -rtc base=utc does.
printf '0.0 0 0.0\n0\nUTC\n' >"$ROOT/etc/adjtime"
printf 'virtplane-guest\n' >"$ROOT/etc/hostname"
printf 'PRETTY_NAME="virtplane test guest (Debian kernel, busybox)"\nNAME="virtplane-guest"\nID=virtplane-guest\nID_LIKE=debian\nVERSION_ID="12"\n' >"$ROOT/etc/os-release"

# ---------------------------------------------------------------- agent helpers
# Programs qemu-ga 7.2 runs for some commands:
#   guest-set-time             /sbin/hwclock -w|-s (fixed path; "not currently supported" without it)
#   guest-shutdown             /sbin/shutdown -h -P|-H|-r +0 MESSAGE (fixed path)
#   guest-set-user-password    chpasswd [-e] on PATH, "NAME:PASSWORD" on its stdin
ln -s ../bin/busybox "$ROOT/sbin/hwclock"

# /init is a shell, not an init that takes shutdown requests: power off, halt or reboot directly.
cat >"$ROOT/sbin/shutdown" <<'EOF'
#!/bin/sh
# shutdown [-h] [-P|-H|-r] [TIME] [MESSAGE]: what qemu-ga's guest-shutdown runs.
action=poweroff
for a in "$@"; do
    case "$a" in
        -P|--poweroff) action=poweroff ;;
        -H|--halt) action=halt ;;
        -r|--reboot) action=reboot ;;
    esac
done
echo "virtplane-guest: shutdown ($action)" >/dev/console
sync
exec "$action" -f
EOF
chmod 0755 "$ROOT/sbin/shutdown"

# Debian's busybox has no chpasswd applet (and shadow's chpasswd needs PAM): this one takes
# chpasswd's input and its -e flag, hashes plain passwords with busybox mkpasswd (SHA-512) and
# rewrites /etc/shadow (mode 0600) through a temporary file.
cat >"$ROOT/usr/sbin/chpasswd" <<'EOF'
#!/bin/sh
# chpasswd [-e]: reads NAME:PASSWORD lines on stdin; -e: PASSWORD is already crypt(3)-hashed.
crypted=0
for a in "$@"; do
    case "$a" in
        -e|--encrypted) crypted=1 ;;
        *) echo "chpasswd: unsupported option '$a' (only -e)" >&2; exit 2 ;;
    esac
done
status=0
while IFS= read -r line || [ -n "$line" ]; do
    name=${line%%:*}
    pass=${line#*:}
    if [ "$name" = "$line" ] || [ -z "$name" ]; then
        echo "chpasswd: line without 'NAME:' ignored" >&2; status=1; continue
    fi
    if ! n="$name" awk -F: '$1 == ENVIRON["n"] { found = 1 } END { exit !found }' /etc/passwd; then
        echo "chpasswd: user '$name' does not exist in /etc/passwd" >&2; status=1; continue
    fi
    if [ $crypted = 1 ]; then
        hash=$pass
    elif ! hash=$(printf '%s' "$pass" | mkpasswd -m sha512 -P 0); then
        echo "chpasswd: cannot hash the password for '$name'" >&2; status=1; continue
    fi
    umask 077
    n="$name" h="$hash" d=$(($(date +%s) / 86400)) awk -F: -v OFS=: '
        $1 == ENVIRON["n"] { $2 = ENVIRON["h"]; $3 = ENVIRON["d"]; found = 1 }
        { print }
        END { if (!found) print ENVIRON["n"], ENVIRON["h"], ENVIRON["d"], 0, 99999, 7, "", "", "" }
    ' /etc/shadow >/etc/shadow+ && mv /etc/shadow+ /etc/shadow || {
        rm -f /etc/shadow+
        echo "chpasswd: cannot update /etc/shadow for '$name'" >&2; status=1
    }
done
exit $status
EOF
chmod 0755 "$ROOT/usr/sbin/chpasswd"

# ---------------------------------------------------------------- kernel modules
# Whatever is a module in Debian's kernel gets copied and insmod'ed in dependency order
# (taken from each module's modinfo "depends=" field; there is no depmod in the guest).
wanted=(button evdev virtio_pci virtio_console virtio_net virtio_blk virtio_balloon crc32c_generic ext4)
declare -A kconf_of=(
    [button]=CONFIG_ACPI_BUTTON [evdev]=CONFIG_INPUT_EVDEV [virtio_pci]=CONFIG_VIRTIO_PCI
    [virtio_console]=CONFIG_VIRTIO_CONSOLE [virtio_net]=CONFIG_VIRTIO_NET
    [virtio_blk]=CONFIG_VIRTIO_BLK [virtio_balloon]=CONFIG_VIRTIO_BALLOON
    [crc32c_generic]=CONFIG_CRYPTO_CRC32C [ext4]=CONFIG_EXT4_FS
)
declare -A modfile=() placed=()
while IFS= read -r f; do
    n="$(basename "$f" .ko)"; modfile[$n]="$f"; modfile[${n//-/_}]="$f"
done < <(find "$moddir" -name '*.ko')
order=()
place() { # MODULE: append its dependencies, then itself
    local m="$1" deps d
    [[ -n "${placed[$m]:-}" ]] && return
    placed[$m]=1
    [[ -n "${modfile[$m]:-}" ]] || die "module $m not found under $moddir"
    deps="$(tr '\0' '\n' <"${modfile[$m]}" | grep -a '^depends=' | head -n1 | cut -d= -f2)"
    for d in ${deps//,/ }; do place "$d"; done
    order+=("$m")
}
for m in "${wanted[@]}"; do
    opt="${kconf_of[$m]}"
    case "$(grep -E "^$opt=" "$kconfig" | cut -d= -f2)" in
        y) log "$opt=y (built in)";;
        m) place "$m";;
        *) die "$opt is not enabled in $kver's config";;
    esac
done
: >"$ROOT/lib/modules/order"
for m in "${order[@]}"; do
    cp "${modfile[$m]}" "$ROOT/lib/modules/$m.ko"
    echo "$m" >>"$ROOT/lib/modules/order"
done
log "modules (insmod order): ${order[*]}"

# ---------------------------------------------------------------- /init
cat >"$ROOT/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# busybox udhcpc hook: configure the interface from the lease
case "$1" in
    deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip -4 addr add "$ip/${mask:-24}" dev "$interface"
        if [ -n "$router" ]; then
            for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        fi
        : >/etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
        ;;
esac
exit 0
EOF
chmod 0755 "$ROOT/usr/share/udhcpc/default.script"

# busybox acpid: with no /etc/acpid.conf or /etc/acpi.map its built-in tables map the power
# button (KEY_POWER on /dev/input/event*) to /etc/acpi/PWRF/00000080, executed directly.
mkdir -p "$ROOT/etc/acpi/PWRF"
cat >"$ROOT/etc/acpi/PWRF/00000080" <<'EOF2'
#!/bin/sh
echo "virtplane-guest: power button, powering off" >/dev/console
poweroff -f
EOF2
chmod 0755 "$ROOT/etc/acpi/PWRF/00000080"

cat >"$ROOT/init" <<'EOF'
#!/bin/sh
# virtplane test guest /init (busybox)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# After switch_root, /dev is already the devtmpfs moved from the initramfs: mounting it again
# there fails (EBUSY) and a tmpfs over it would hide the device nodes.
if ! awk '$2 == "/dev" { found = 1 } END { exit !found }' /proc/mounts; then
    mount -t devtmpfs devtmpfs /dev 2>/dev/null || mount -t tmpfs -o mode=0755 tmpfs /dev
fi
mkdir -p /dev/pts /dev/shm /run
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /run
[ -e /dev/console ] || mknod /dev/console c 5 1
[ -e /dev/ttyS0 ] || mknod /dev/ttyS0 c 4 64
exec </dev/console >/dev/console 2>&1
hostname -F /etc/hostname

if [ ! -e /on-disk ]; then
    for m in $(cat /lib/modules/order); do
        insmod /lib/modules/$m.ko || echo "virtplane-guest: insmod $m failed"
    done
fi

# virtplane.root=DEV on the kernel command line: the root file system is on a disk (the
# tests' storage volumes hold rootfs.img); the guest moves there and runs this /init again.
root=$(sed -n 's/.*virtplane\.root=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$root" ] && [ ! -e /on-disk ]; then
    i=0
    while [ ! -b "$root" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    mkdir -p /newroot
    if mount -t ext4 "$root" /newroot; then
        echo "virtplane-guest: switching to the root file system on $root"
        umount /dev/pts /run /sys /proc 2>/dev/null
        mount --move /dev /newroot/dev
        exec switch_root /newroot /init
    fi
    echo "virtplane-guest: cannot mount $root; staying in the initramfs"
fi
if [ -e /on-disk ]; then
    echo "virtplane-guest: root file system on $(awk '$2 == "/" { d = $1 } END { print d }' /proc/mounts)"
fi

# No udev: create /dev/virtio-ports/<name> links ourselves (wait briefly for the devices).
mkdir -p /dev/virtio-ports
i=0
while [ $i -lt 50 ]; do
    for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] || continue
        n=$(cat "$p/name")
        [ -n "$n" ] && ln -sf "../$(basename "$p")" "/dev/virtio-ports/$n"
    done
    [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && break
    ls /sys/class/virtio-ports/ 2>/dev/null | grep -q . || [ $i -lt 10 ] || break
    i=$((i + 1)); sleep 0.1
done

# ACPI power button → poweroff
acpid

ip link set lo up
for n in /sys/class/net/*; do
    n=$(basename "$n")
    [ "$n" = lo ] && continue
    ip link set "$n" up
    udhcpc -b -q -t 5 -T 1 -i "$n" -s /usr/share/udhcpc/default.script >/dev/null 2>&1 &
done

if [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
    (
        while :; do
            qemu-ga --method=virtio-serial --path=/dev/virtio-ports/org.qemu.guest_agent.0
            echo "virtplane-guest: qemu-ga exited ($?), restarting"
            sleep 1
        done
    ) &
else
    echo "virtplane-guest: no org.qemu.guest_agent.0 port, qemu-ga not started"
fi

# A root session in utmp (what guest-get-users reports): `login -f` on the first virtual
# terminal, which nothing reads. Not on the serial console: login flushes the terminal's
# input, which would eat text a test types right after "ready".
if [ -c /dev/tty1 ]; then
    setsid login -f root </dev/tty1 >/dev/tty1 2>&1 &
fi

echo "virtplane-guest: ready"
while :; do
    setsid cttyhack sh -l </dev/ttyS0 >/dev/ttyS0 2>&1 || sh </dev/ttyS0 >/dev/ttyS0 2>&1
    sleep 1
done
EOF
chmod 0755 "$ROOT/init"

# ---------------------------------------------------------------- root file system image
# The same tree as an ext4 image (with /on-disk), for guests whose root is a disk: a storage
# volume made from it boots with `virtplane.root=/dev/vda` on the kernel command line.
log "making rootfs.img"
DISK_ROOT="$WORK/disk-root"
rm -rf "$DISK_ROOT"
cp -a "$ROOT" "$DISK_ROOT"
: >"$DISK_ROOT/on-disk"
mkdir -p "$DISK_ROOT/newroot"
rm -f "$OUT/rootfs.img.tmp"
mke2fs -q -t ext4 -L vp-guest-root -d "$DISK_ROOT" "$OUT/rootfs.img.tmp" 96M \
    || die "mke2fs failed (install e2fsprogs)"
mv "$OUT/rootfs.img.tmp" "$OUT/rootfs.img"

# ---------------------------------------------------------------- cpio
# cpio: the host's if present, else busybox's own (newc).
log "packing initramfs"
if command -v cpio >/dev/null 2>&1; then
    CPIO=(cpio --quiet -o -H newc -R 0:0)
else
    CPIO=("$bb" cpio -o -H newc -R 0:0)
fi
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}") | gzip -9 -n >"$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"

rm -rf "$WORK"
echo "$SCRIPT_SUM" >"$STAMP"
log "done: $OUT/vmlinuz ($(du -h "$OUT/vmlinuz" | cut -f1)), $OUT/initrd.img ($(du -h "$OUT/initrd.img" | cut -f1))${OUT:+}$( [[ -f "$OUT/vmlinux" ]] && echo ", $OUT/vmlinux ($(du -h "$OUT/vmlinux" | cut -f1))")"
