#!/usr/bin/env bash
# Remove what install.sh installed: the systemd unit, the venv, the service user (only if
# install.sh created it), the PAM service file (only while it holds what install.sh wrote).
# The config, data dir and models dir are kept unless --purge.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: uninstall.sh [--prefix DIR] [--purge]

  --prefix DIR   the prefix given to install.sh (default: /opt/sdrest)
  --purge        also delete the config, the data dir (jobs, outputs) and the models dir
                 when it lies inside the data dir; a models dir elsewhere is always kept
  -h, --help     this help

example:
  sudo ./uninstall.sh                 # keeps /var/lib/sdrest and the config
USAGE
}

die() { echo "uninstall.sh: error: $*" >&2; exit 1; }
say() { echo "uninstall.sh: $*"; }

PREFIX=/opt/sdrest
PURGE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX="$2"; shift 2 ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
STATE="$PREFIX/etc/install.state"
[ -f "$STATE" ] || die "no sdrest installation in $PREFIX ($STATE is missing)"

state() { sed -n "s/^$1=//p" "$STATE" | head -n 1; }
SERVICE_USER="$(state user)"
CREATED_USER="$(state created_user)"
DATA_DIR="$(state data_dir)"
MODELS_DIR="$(state models_dir)"
UNIT="$(state unit)"
PAM_FILE="$(state pam_file)"
SERVICE_NAME=sdrest

if [ -n "$UNIT" ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now "$SERVICE_NAME.service" || true
    fi
    rm -f "$UNIT"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl daemon-reload
    fi
    say "removed the unit $UNIT"
fi

rm -rf "$PREFIX/venv" "$PREFIX/bin/sdrest" "$PREFIX/share/doc/sdrest" "$PREFIX/etc/$SERVICE_NAME.service"
say "removed the venv in $PREFIX"

if [ -n "$PAM_FILE" ]; then
    message="$("$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/deploy/pam-service.sh" remove "$PAM_FILE")"
    [ -z "$message" ] || say "$message"
fi

if [ "$CREATED_USER" = 1 ] && [ -n "$SERVICE_USER" ] && id -u "$SERVICE_USER" >/dev/null 2>&1; then
    userdel "$SERVICE_USER" && say "removed the user $SERVICE_USER"
fi

if [ "$PURGE" -eq 1 ]; then
    rm -f "$PREFIX/etc/sdrest.yaml"
    case "$MODELS_DIR/" in
        "$DATA_DIR"/*) ;;
        *) say "kept the models dir $MODELS_DIR (outside the data dir)" ;;
    esac
    [ -z "$DATA_DIR" ] || [ "$DATA_DIR" = / ] || rm -rf "$DATA_DIR"
    rm -f "$STATE"
    say "purged the config and the data dir $DATA_DIR"
else
    sed -i -e "s/^created_user=.*/created_user=0/" -e "s/^unit=.*/unit=/" -e "s/^pam_file=.*/pam_file=/" "$STATE"
    say "kept the config $PREFIX/etc/sdrest.yaml and the data in $DATA_DIR (--purge deletes them)"
fi
rmdir "$PREFIX/bin" "$PREFIX/share/doc" "$PREFIX/share" "$PREFIX/etc" "$PREFIX" 2>/dev/null || true
