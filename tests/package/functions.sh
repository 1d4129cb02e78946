# Test stand-in for IPFire's /opt/pakfire/lib/functions.sh (IPFire's own cannot be shipped here): the
# same function names, acting under ${ROOT}; services are only recorded (they are run in the lab tests).
extract_files() { tar xJf files.tar.xz -C "${ROOT:-/}"; }
remove_files() { local f; for f in $(cat ROOTFILES); do rm -rf "${ROOT}/${f}"; done; }
restore_backup() { :; }
make_backup() { :; }
extract_backup_includes() { :; }
start_service() { echo "start $*" >> "${ROOT}/services.log"; }
stop_service() { echo "stop $*" >> "${ROOT}/services.log"; }
