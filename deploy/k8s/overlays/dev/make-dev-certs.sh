#!/usr/bin/env bash
# Writes the dev overlay's secret files into secrets/ next to this script: a throwaway CA,
# the node certificate (SAN virtplane-node), the gateway's client certificate for the nodes,
# the gateway's server certificate for users (the Service's names, localhost, 127.0.0.1),
# and admin/operator/viewer tokens with the tokens file that holds their hashes.
#
#   deploy/k8s/overlays/dev/make-dev-certs.sh [--force] [--days N]
#
# Existing files are kept unless --force (new ones would not match what a running cluster
# holds). Nothing here is for production: the CA key sits next to the certificates.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$here/secrets
force=0
days=365

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case $1 in
        --force) force=1; shift ;;
        --days) days=${2:?--days needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "make-dev-certs.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $days in
    ''|*[!0-9]*) echo "make-dev-certs.sh: --days must be a number of days, not '$days'" >&2; exit 2 ;;
esac
command -v openssl >/dev/null 2>&1 || {
    echo "make-dev-certs.sh: needs openssl (apt-get install openssl)" >&2
    exit 1
}

if [ -e "$out/ca.crt" ] && [ "$force" = 0 ]; then
    echo "$out already holds dev secrets; keeping them (--force makes new ones)."
    exit 0
fi
mkdir -p "$out"
chmod 700 "$out"
umask 077

# An EC P-256 key in PKCS#8 PEM.
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
issue() {
    local name=$1 subject=$2 extensions=$3
    new_key "$out/$name.key"
    openssl req -new -key "$out/$name.key" -subj "$subject" -out "$out/$name.csr"
    printf '%s\n' "$extensions" > "$out/$name.ext"
    openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
        -extfile "$out/$name.ext" -out "$out/$name.crt" 2>/dev/null
    rm -f "$out/$name.csr" "$out/$name.ext"
}

new_key "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -subj "/CN=virtplane dev CA" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt"

leaf='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature'

# The node services' certificate: the gateway connects to node IPs and checks this name
# (--client-tls-server-name virtplane-node).
issue node "/CN=virtplane-node" "$leaf
extendedKeyUsage=serverAuth
subjectAltName=DNS:virtplane-node"

# The gateway's client certificate, which the node services require (--tls-client-ca).
issue gateway-client "/CN=virtplane-gateway" "$leaf
extendedKeyUsage=clientAuth"

# The certificate users see on the gateway's port 7443.
issue gateway-server "/CN=virtplane-gateway" "$leaf
extendedKeyUsage=serverAuth
subjectAltName=DNS:virtplane-gateway,DNS:virtplane-gateway.virtplane,DNS:virtplane-gateway.virtplane.svc,DNS:virtplane-gateway.virtplane.svc.cluster.local,DNS:localhost,IP:127.0.0.1"

# Tokens: the tokens file holds only their SHA-256 hashes.
{
    echo "# user role sha256 (dev tokens from make-dev-certs.sh; the tokens are in *.token)"
    for role in admin operator viewer; do
        token=$(openssl rand -base64 48 | tr -d '=+/\n' | cut -c1-40)
        printf '%s\n' "$token" > "$out/$role.token"
        echo "$role $role sha256:$(printf %s "$token" | openssl dgst -sha256 -r | cut -d' ' -f1)"
    done
} > "$out/tokens"

cat <<MSG
Dev secrets written to $out (keep them private; they are git-ignored).
  kubectl apply -k $here
  kubectl -n virtplane port-forward svc/virtplane-gateway 7443:7443 &
  VIRTPLANE_SERVER=https://localhost:7443 VIRTPLANE_TLS_CA=$out/ca.crt \\
    VIRTPLANE_TOKEN=\$(cat $out/admin.token) virtctl list --all
MSG
