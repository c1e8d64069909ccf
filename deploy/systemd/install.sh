#!/usr/bin/env bash
# Installs virtplane's four daemons and virtctl in /usr/local/bin, their systemd units in
# /usr/local/lib/systemd/system, the sysusers.d file (and creates the `virtplane` group and
# `virtplane-storage` user), /etc/virtplane, and this directory's README as the units'
# documentation. Starts nothing unless asked.
#
#   deploy/systemd/install.sh [--bin-dir DIR] [--start]
#
#   --bin-dir DIR  where the built binaries are (default: target/release, built if missing)
#   --start        also `systemctl daemon-reload` and `systemctl enable --now` the units
#                  (needs /etc/virtplane/tokens; see README.md)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=
start=0
units=(virtplane-networkd.service virtplane-storaged.service virtplane-domaind.service
    virtplane-gateway.service)

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
        --bin-dir=*) bin_dir=${1#*=}; shift ;;
        --start) start=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (it writes /usr/local and /etc)" >&2
    exit 1
fi

if [ -z "$bin_dir" ]; then
    bin_dir=$repo/target/release
    if [ ! -x "$bin_dir/virtplane-gateway" ]; then
        echo "install.sh: $bin_dir has no build; run 'cargo build --release --bins' first" \
            "(as your user) or pass --bin-dir" >&2
        exit 1
    fi
fi
install -d -m 0755 /usr/local/bin
for binary in virtplane-domaind virtplane-networkd virtplane-storaged virtplane-gateway virtctl; do
    [ -x "$bin_dir/$binary" ] || { echo "install.sh: $bin_dir/$binary is missing" >&2; exit 1; }
    install -m 0755 "$bin_dir/$binary" "/usr/local/bin/$binary"
done

install -d -m 0755 /usr/local/lib/systemd/system /usr/local/lib/sysusers.d \
    /usr/local/share/doc/virtplane/systemd
for unit in "${units[@]}"; do
    install -m 0644 "$here/$unit" "/usr/local/lib/systemd/system/$unit"
done
install -m 0644 "$here/virtplane.sysusers" /usr/local/lib/sysusers.d/virtplane.conf
install -m 0644 "$here/README.md" /usr/local/share/doc/virtplane/systemd/README.md

if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/local/lib/sysusers.d/virtplane.conf
else
    getent group virtplane >/dev/null || groupadd --system virtplane
    getent passwd virtplane-storage >/dev/null || useradd --system --user-group \
        --home-dir /var/lib/virtplane/storage --no-create-home --shell /usr/sbin/nologin \
        --comment "virtplane storage service" virtplane-storage
fi

install -d -m 0750 -o root -g virtplane /etc/virtplane
if [ -e /etc/virtplane/tokens ]; then
    chown root:virtplane /etc/virtplane/tokens
    chmod 0640 /etc/virtplane/tokens
else
    echo "No /etc/virtplane/tokens yet: README.md says how to make one."
fi

echo "Installed binaries in /usr/local/bin, units in /usr/local/lib/systemd/system."
if [ "$start" = 1 ]; then
    [ -s /etc/virtplane/tokens ] || {
        echo "install.sh: --start needs /etc/virtplane/tokens (see README.md)" >&2
        exit 1
    }
    systemctl daemon-reload
    systemctl enable --now "${units[@]}"
else
    echo "Start them with: systemctl daemon-reload && systemctl enable --now ${units[*]}"
fi
