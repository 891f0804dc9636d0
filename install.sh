#!/usr/bin/env bash
# Install sdrest from this checkout as a service: a venv under the prefix, a config
# file, a data dir, a service user and a hardened systemd unit. Idempotent: a second
# run upgrades sdrest in place and keeps the config and the data. See docs/deployment.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: install.sh [options]

  --prefix DIR       where the venv, config and unit copy go (default: /opt/sdrest)
  --cuda             build stable-diffusion.cpp for NVIDIA GPUs (CMAKE_ARGS="-DSD_CUDA=ON")
  --user NAME        the service user, created as a system user if missing (default: sdrest)
  --port N           port to listen on (default: 8080)
  --host ADDR        address to bind (default: 127.0.0.1; put a reverse proxy in front)
  --models-dir DIR   models folder (default: DATA_DIR/models)
  --data-dir DIR     job database and outputs, mode 0750 (default: /var/lib/sdrest)
  --auth MODE        authentication mode (none, api-key, jwt, pam, unix, optional), written
                     to a new config; pam also writes /etc/pam.d/sdrest if it is missing, and
                     pam and unix put a service user install.sh creates into /etc/shadow's group
  --no-service       install, but do not install, enable or start the systemd unit
  --wheel FILE       install this prebuilt wheel instead of building the checkout
                     (also $SDREST_WHEEL)
  -h, --help         this help

environment:
  PYTHON             interpreter for the venv (default: python3)
  CMAKE_ARGS         passed to the build (e.g. "-DSD_VULKAN=ON"); --cuda adds -DSD_CUDA=ON
  SDREST_PIP_ARGS    extra pip arguments (e.g. "--no-build-isolation", "--find-links DIR")
  SDREST_UNIT_DIR    where the unit is installed (default: /etc/systemd/system)
  SDREST_PAM_DIR     where --auth pam writes the sdrest service file (default: /etc/pam.d)

example:
  sudo ./install.sh --port 7860 --models-dir /srv/models
USAGE
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=/opt/sdrest
CUDA=0
SERVICE_USER=sdrest
PORT=8080
HOST=127.0.0.1
MODELS_DIR=""
DATA_DIR=/var/lib/sdrest
AUTH=""
SERVICE=1
WHEEL="${SDREST_WHEEL:-}"
PYTHON="${PYTHON:-python3}"
UNIT_DIR="${SDREST_UNIT_DIR:-/etc/systemd/system}"
PAM_DIR="${SDREST_PAM_DIR:-/etc/pam.d}"
SERVICE_NAME=sdrest

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_value "$@"; PREFIX="$2"; shift 2 ;;
        --cuda) CUDA=1; shift ;;
        --user) need_value "$@"; SERVICE_USER="$2"; shift 2 ;;
        --port) need_value "$@"; PORT="$2"; shift 2 ;;
        --host) need_value "$@"; HOST="$2"; shift 2 ;;
        --models-dir) need_value "$@"; MODELS_DIR="$2"; shift 2 ;;
        --data-dir) need_value "$@"; DATA_DIR="$2"; shift 2 ;;
        --auth) need_value "$@"; AUTH="$2"; shift 2 ;;
        --no-service) SERVICE=0; shift ;;
        --wheel) need_value "$@"; WHEEL="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done

case "$PORT" in ''|*[!0-9]*) die "--port: expected a number, got '$PORT'" ;; esac
[ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port: must be 1..65535, got $PORT"
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
PREFIX="$(absolute "$PREFIX")"
DATA_DIR="$(absolute "$DATA_DIR")"
MODELS_DIR="$(absolute "${MODELS_DIR:-$DATA_DIR/models}")"
for path in "$PREFIX" "$DATA_DIR" "$MODELS_DIR"; do
    case "$path" in *[[:space:]\|\&\\\"]*) die "paths with spaces, quotes or |&\\ cannot go into a systemd unit: $path" ;; esac
done
case "$AUTH" in ''|none|api-key|jwt|pam|unix|optional) ;; *) die "--auth: expected none, api-key, jwt, pam, unix or optional, got '$AUTH'" ;; esac
case "$HOST" in
    127.*|::1|localhost) ;;
    *) [ -n "$AUTH" ] && [ "$AUTH" != none ] \
        || die "--host $HOST without --auth: the server refuses to serve a network address unauthenticated; add --auth jwt (or pam, unix, api-key; docs/security.md)" ;;
esac
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || die "--wheel: no such file: $WHEEL"
[ -z "$WHEEL" ] || WHEEL="$(absolute "$WHEEL")"
command -v "$PYTHON" >/dev/null || die "no $PYTHON: install Python 3.10+ or set PYTHON"
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON must be Python 3.10 or newer, with the venv module"

ROOT=0; [ "$(id -u)" -eq 0 ] && ROOT=1
VENV="$PREFIX/venv"
ETC="$PREFIX/etc"
CONFIG="$ETC/sdrest.yaml"
STATE="$ETC/install.state"
RENDERED_UNIT="$ETC/$SERVICE_NAME.service"

# --- the service user ---------------------------------------------------------------------
CREATED_USER=0
if [ -f "$STATE" ] && grep -qx "created_user=1" "$STATE" && grep -qx "user=$SERVICE_USER" "$STATE"; then
    CREATED_USER=1  # created by an earlier run: uninstall.sh may remove it
fi
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    [ "$ROOT" -eq 1 ] || die "user $SERVICE_USER does not exist and only root can create it (or pass --user $(id -un))"
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    useradd --system --home-dir "$DATA_DIR" --no-create-home --shell "$nologin" --user-group "$SERVICE_USER"
    CREATED_USER=1
    say "created system user $SERVICE_USER"
fi
SERVICE_GROUP="$(id -gn "$SERVICE_USER")"

# --- folders --------------------------------------------------------------------------------
mkdir -p "$PREFIX" "$ETC" "$PREFIX/bin" "$PREFIX/share/doc/sdrest"
for dir in "$DATA_DIR" "$MODELS_DIR"; do
    mkdir -p "$dir"
    chmod 0750 "$dir"
    [ "$ROOT" -eq 0 ] || chown "$SERVICE_USER:$SERVICE_GROUP" "$dir"
done

# --- the venv and sdrest --------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
read -r -a PIP_EXTRA <<< "${SDREST_PIP_ARGS:-}"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check "${PIP_EXTRA[@]}" "$@"; }
started=$(date +%s)
if [ -n "$WHEEL" ]; then
    say "installing $WHEEL"
    pip_install --upgrade "$WHEEL"
    pip_install --force-reinstall --no-deps "$WHEEL"  # same version again: replace it in place
else
    if [ "$CUDA" -eq 1 ]; then
        export CMAKE_ARGS="${CMAKE_ARGS:+$CMAKE_ARGS }-DSD_CUDA=ON"
    fi
    say "building sdrest from $SRC${CMAKE_ARGS:+ with CMAKE_ARGS=$CMAKE_ARGS} (a first CPU build takes minutes; ccache makes rebuilds fast)"
    pip_install --upgrade "$SRC"
fi
say "sdrest installed in $(( $(date +%s) - started )) s: $("$VENV/bin/sdrest" --version)"
ln -sfn "$VENV/bin/sdrest" "$PREFIX/bin/sdrest"
[ ! -f "$SRC/docs/deployment.md" ] || cp "$SRC/docs/deployment.md" "$PREFIX/share/doc/sdrest/deployment.md"

# --- the config file (kept when it exists) --------------------------------------------------
KNOWN_KEYS="$("$VENV/bin/python" -c 'import dataclasses
from sdrest.config import ServerConfig
print(" ".join(f.name for f in dataclasses.fields(ServerConfig)))')"
knows() { case " $KNOWN_KEYS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ -f "$CONFIG" ]; then
    say "kept the existing config $CONFIG (flags of this run do not change it; edit it, then restart)"
else
    umask 027
    {
        echo "# sdrest server settings (keys: sdrest serve --help; env SDREST_* and flags override them)"
        echo "host: \"$HOST\""
        echo "port: $PORT"
        echo "data_dir: \"$DATA_DIR\""
        echo "models_dir: \"$MODELS_DIR\""
        if [ -n "$AUTH" ] && knows auth; then echo "auth: \"$AUTH\""; fi
    } > "$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
    umask 022
    [ "$ROOT" -eq 0 ] || chown "root:$SERVICE_GROUP" "$CONFIG"
    chmod 0640 "$CONFIG"
    say "wrote $CONFIG"
fi
if [ -n "$AUTH" ] && ! knows auth; then
    say "warning: --auth $AUTH not written: this sdrest has no auth setting yet (keep it on 127.0.0.1 or behind an authenticating proxy)"
fi
"$VENV/bin/python" -c 'import sys; from sdrest.config import load_config; load_config(config_file=sys.argv[1], environ={})' "$CONFIG" \
    || die "$CONFIG does not load (see above)"

# --- system users (auth pam, auth unix) ----------------------------------------------------
PAM_FILE=""
if [ -f "$STATE" ]; then
    PAM_FILE="$(sed -n 's/^pam_file=//p' "$STATE" | head -n 1)"  # written by an earlier run: still ours
fi
if [ "$AUTH" = pam ]; then
    if message="$("$SRC/deploy/pam-service.sh" write "$PAM_DIR/sdrest")"; then
        PAM_FILE="$PAM_DIR/sdrest"
    fi
    say "$message"
fi
if [ "$AUTH" = pam ] || [ "$AUTH" = unix ]; then
    # unix reads /etc/shadow; pam's pam_unix does too, as its helper (unix_chkpwd) checks no one's
    # password but its caller's. The service user needs the file's group (shadow on Debian).
    SHADOW_GROUP="$(stat -c %G /etc/shadow 2>/dev/null || true)"
    in_shadow_group() { [ -n "$SHADOW_GROUP" ] && id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qxF "$SHADOW_GROUP"; }
    if [ "$(id -u "$SERVICE_USER")" -eq 0 ] || in_shadow_group; then
        :  # root, or already in the group
    elif [ "$CREATED_USER" -eq 1 ] && [ -n "$SHADOW_GROUP" ] && [ "$SHADOW_GROUP" != root ]; then
        usermod -a -G "$SHADOW_GROUP" "$SERVICE_USER"
        say "added $SERVICE_USER to group $SHADOW_GROUP: auth $AUTH checks passwords against /etc/shadow"
    elif [ -n "$SHADOW_GROUP" ] && [ "$SHADOW_GROUP" != root ]; then
        say "note: auth $AUTH: $SERVICE_USER cannot read /etc/shadow, which local passwords need: run" \
            "usermod -a -G $SHADOW_GROUP $SERVICE_USER (see docs/deployment.md)"
    else
        say "note: auth $AUTH: /etc/shadow is readable by root only here, so $SERVICE_USER cannot check local" \
            "passwords (see docs/deployment.md)"
    fi
fi

# --- the systemd unit -----------------------------------------------------------------------
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@USER@|$SERVICE_USER|g" -e "s|@GROUP@|$SERVICE_GROUP|g" \
    -e "s|@CONFIG@|$CONFIG|g" -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@MODELS_DIR@|$MODELS_DIR|g" \
    -e "s|@SERVICE@|$SERVICE_NAME|g" "$SRC/deploy/sdrest.service.in" > "$RENDERED_UNIT"
UNIT_INSTALLED=""
if [ "$SERVICE" -eq 1 ]; then
    [ "$ROOT" -eq 1 ] || [ -w "$UNIT_DIR" ] || die "installing the service needs root (or pass --no-service)"
    mkdir -p "$UNIT_DIR"
    cp "$RENDERED_UNIT" "$UNIT_DIR/$SERVICE_NAME.service"
    UNIT_INSTALLED="$UNIT_DIR/$SERVICE_NAME.service"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl daemon-reload
        systemctl enable "$SERVICE_NAME.service"
        systemctl restart "$SERVICE_NAME.service"
        say "service $SERVICE_NAME enabled and (re)started"
    else
        say "systemd is not running here: unit written to $UNIT_INSTALLED, not enabled"
    fi
fi

# --- what uninstall.sh needs to know --------------------------------------------------------
cat > "$STATE" <<STATE_EOF
user=$SERVICE_USER
created_user=$CREATED_USER
data_dir=$DATA_DIR
models_dir=$MODELS_DIR
unit=$UNIT_INSTALLED
pam_file=$PAM_FILE
STATE_EOF

URL_HOST="$HOST"; case "$HOST" in 0.0.0.0|::|"") URL_HOST="$(hostname -f 2>/dev/null || hostname)" ;; esac
cat <<DONE

sdrest is installed.
  web UI and API:  http://$URL_HOST:$PORT/   (API docs: http://$URL_HOST:$PORT/api/docs)
  command:         $PREFIX/bin/sdrest   (sdrest info, sdrest convert ...)
  config:          $CONFIG
  data:            $DATA_DIR
  models:          $MODELS_DIR   (checkpoints/, vae/, lora/, esrgan/ ...)
DONE
if [ "$SERVICE" -eq 1 ]; then
    echo "  service:         systemctl status $SERVICE_NAME; journalctl -u $SERVICE_NAME -f"
else
    echo "  run it:          sudo -u $SERVICE_USER $PREFIX/bin/sdrest serve --config $CONFIG"
    echo "  unit (not installed): $RENDERED_UNIT"
fi
if [ "$AUTH" = pam ] || [ "$AUTH" = unix ]; then
    echo "  sign in:         with a system account and its password (auth $AUTH); admins: admin_users in $CONFIG"
elif "$VENV/bin/sdrest" users --help >/dev/null 2>&1; then
    echo "  first admin:     sudo -u $SERVICE_USER $PREFIX/bin/sdrest users add admin --role admin --config $CONFIG"
else
    echo "  first admin:     this version has no user accounts yet: anyone who reaches the port can use it."
    echo "                   Keep --host 127.0.0.1, or put an authenticating reverse proxy in front (docs/deployment.md)."
fi
