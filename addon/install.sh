#!/bin/bash
# pakfire install step (run as `NAME=zonevpn ./install.sh` from the unpacked package)
. "${ROOT}/opt/pakfire/lib/functions.sh"
extract_files
restore_backup "${NAME}"
mkdir -p "${ROOT}/var/ipfire/zonevpn"
[ -e "${ROOT}/var/ipfire/zonevpn/settings" ] || printf 'ENABLED=off\n' > "${ROOT}/var/ipfire/zonevpn/settings"
chown nobody:nobody "${ROOT}/var/ipfire/zonevpn" "${ROOT}/var/ipfire/zonevpn/settings" 2>/dev/null  # the page writes it (atomically: a temp file in the same directory)
"${ROOT}/usr/sbin/zonevpn" --root "${ROOT:-/}" --quiet integrate install
[ -x "${ROOT}/usr/local/bin/update-lang-cache" ] && "${ROOT}/usr/local/bin/update-lang-cache"
start_service --background "${NAME}"
exit 0
