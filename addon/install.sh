#!/bin/bash
# pakfire install step, run as `NAME=zonevpn ./install.sh` in /opt/pakfire/tmp (pakfire's layout)
. /opt/pakfire/lib/functions.sh
extract_files
# extract_files reports no failure: a file of ROOTFILES that did not arrive fails the install here
for entry in $(grep -v "^#" ROOTFILES); do
	[ -e "/${entry}" ] || [ -L "/${entry}" ] || { echo "zonevpn: /${entry} was not installed" >&2; exit 1; }
done
restore_backup "${NAME}"  # after update.sh's uninstall step: the settings of a moment ago
mkdir -p /var/ipfire/zonevpn
[ -e /var/ipfire/zonevpn/settings ] || printf 'ENABLED=off\n' > /var/ipfire/zonevpn/settings
chown nobody:nobody /var/ipfire/zonevpn /var/ipfire/zonevpn/settings  # the page writes it (atomically)
/usr/sbin/zonevpn --quiet integrate install || exit 1
[ -x /usr/local/bin/update-lang-cache ] && /usr/local/bin/update-lang-cache
start_service --background "${NAME}"
exit 0
