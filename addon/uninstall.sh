#!/bin/bash
# pakfire uninstall step: give the box back as stock IPFire left it, then remove every file
. "${ROOT}/opt/pakfire/lib/functions.sh"
stop_service "${NAME}"
"${ROOT}/usr/sbin/zonevpn" --root "${ROOT:-/}" --quiet flush
"${ROOT}/usr/sbin/zonevpn" --root "${ROOT:-/}" --quiet integrate remove
make_backup "${NAME}"
remove_files
rm -rf "${ROOT}/var/ipfire/zonevpn" "${ROOT}/run/zonevpn" "${ROOT}/run/zonevpn.lock"
[ -x "${ROOT}/usr/local/bin/update-lang-cache" ] && "${ROOT}/usr/local/bin/update-lang-cache"
exit 0
