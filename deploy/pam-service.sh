#!/usr/bin/env bash
# The PAM service file for `auth: pam` (/etc/pam.d/sdrest): install.sh writes it when it is
# missing, uninstall.sh removes it only while it still holds what install.sh wrote. The file
# hands both checks to the distribution's own stack: authentication (the password) and account
# management (expired or locked accounts).
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: pam-service.sh write FILE    write FILE unless it exists (exit 0: written, 2: left as it was)
       pam-service.sh remove FILE   remove FILE if it still holds what `write` writes (exit 0)
USAGE
}

HEADER="# PAM service of sdrest (auth pam), written by its install.sh; uninstall.sh removes it unless edited"

# The file for one flavour of PAM configuration: Debian's common-* files, or Fedora's and Arch's system-auth.
flavour() {
    echo "$HEADER"
    case "$1" in
        debian) printf '@include common-auth\n@include common-account\n' ;;
        system-auth) printf 'auth     include  system-auth\naccount  include  system-auth\n' ;;
    esac
}

write() {
    local file="$1" dir kind
    dir="$(dirname "$file")"
    if [ -e "$file" ]; then
        echo "kept the existing $file"
        return 2
    fi
    if [ ! -d "$dir" ]; then
        echo "no $dir: PAM is not set up here, so $file was not written (sdrest falls back to the 'login' service)"
        return 2
    fi
    if [ -f "$dir/common-auth" ] && [ -f "$dir/common-account" ]; then
        kind=debian
    elif [ -f "$dir/system-auth" ]; then
        kind=system-auth
    else
        echo "$dir has neither common-auth nor system-auth: $file was not written; write it for this" \
             "distribution (see docs/deployment.md), or sdrest uses the 'login' service"
        return 2
    fi
    if [ ! -w "$dir" ]; then
        echo "$dir is not writable (run as root): $file was not written (sdrest uses the 'login' service)"
        return 2
    fi
    flavour "$kind" > "$file.sdrest-tmp"
    chmod 0644 "$file.sdrest-tmp"
    mv "$file.sdrest-tmp" "$file"
    echo "wrote $file ($kind)"
}

remove() {
    local file="$1" kind
    [ -f "$file" ] || return 0
    for kind in debian system-auth; do
        if [ "$(cat "$file")" = "$(flavour "$kind")" ]; then
            rm -f "$file"
            echo "removed $file"
            return 0
        fi
    done
    echo "kept $file: it was edited since install.sh wrote it"
}

[ $# -eq 2 ] || { usage >&2; exit 1; }
case "$1" in
    write) write "$2" ;;
    remove) remove "$2" ;;
    *) usage >&2; exit 1 ;;
esac
