#!/bin/bash
# pakfire uninstall step. Removing zonevpn gives the box back as stock IPFire left it. Within an upgrade
# (update.sh) nothing is handed back: the kernel keeps holding every bound zone (its rules, tables and
# firewall are the kill switch and need no process) while the files are swapped, and install.sh's start
# takes over.
. /opt/pakfire/lib/functions.sh
if [ -z "${ZONEVPN_UPGRADE:-}" ]; then
	/usr/sbin/zonevpn --quiet flush
	/usr/sbin/zonevpn --quiet integrate remove
fi
make_backup "${NAME}"
remove_files
rm -f /etc/rc.d/rc3.d/off/S19zonevpn  # left by `addonctrl zonevpn disable`
if [ -z "${ZONEVPN_UPGRADE:-}" ]; then
	rm -rf /var/ipfire/zonevpn /var/lib/zonevpn /run/zonevpn /run/zonevpn.lock
fi
[ -x /usr/local/bin/update-lang-cache ] && /usr/local/bin/update-lang-cache
exit 0
