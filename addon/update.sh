#!/bin/bash
# pakfire update step: keep the admin's settings across the new version
. "${ROOT}/opt/pakfire/lib/functions.sh"
extract_backup_includes
./uninstall.sh
./install.sh
