#!/bin/bash
# pakfire update step: the admin's current settings go into the add-on backup (uninstall.sh) and come
# back (install.sh); no moment in between hands a bound zone to red.
. /opt/pakfire/lib/functions.sh
extract_backup_includes
ZONEVPN_UPGRADE=1 ./uninstall.sh || exit 1
./install.sh
