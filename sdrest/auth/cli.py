"""``sdrest users``: manage the server's users and API keys from the terminal (also while it runs).

Every subcommand takes ``--data-dir`` (and ``--config``) as ``sdrest serve`` does, and changes the same
``auth.sqlite3``; the running server sees each change at its next request.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sdrest.auth.passwords import check_new_password, hash_password
from sdrest.auth.store import ROLES, USER, AuthStore, AuthStoreError
from sdrest.config import load_config


def register(subparsers: Any) -> None:
    """Add ``sdrest users`` and its subcommands."""
    users = subparsers.add_parser("users", help="manage users and API keys (auth jwt, api-key, pam, unix, optional)",
                                  description="Manage the server's users and API keys.")
    commands = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    def command(name: str, help: str, func: Any, *, user: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help)
        if user:
            parser.add_argument("name", metavar="NAME", help="the user name")
        _add_place(parser)
        parser.set_defaults(func=func)
        return parser

    add = command("add", "add a user", add_user)
    add.add_argument("--role", choices=ROLES, default=USER, help="admin or user (default: user)")
    _add_password_stdin(add)
    _add_password_stdin(command("passwd", "set a user's password (their tokens and sessions end)", set_password))
    command("remove", "remove a user (their jobs stay)", remove_user)
    command("disable", "disable a user (their tokens, keys and sessions stop working)", disable_user)
    command("enable", "enable a disabled user", enable_user)
    role = command("role", "change a user's role", set_role)
    role.add_argument("role", choices=ROLES, help="the new role")
    listing = command("list", "list the users", list_users, user=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    keys = commands.add_parser("keys", help="API keys: add, list, revoke", description="Manage API keys.")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    key_add = key_commands.add_parser("add", help="add a key for a user (printed once)")
    key_add.add_argument("name", metavar="NAME", help="the user the key acts as")
    key_add.add_argument("--label", required=True, help="what the key is for (a name to recognise it by)")
    _add_place(key_add)
    key_add.set_defaults(func=add_key)
    key_list = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    key_list.add_argument("name", metavar="NAME", nargs="?", help="only this user's keys")
    key_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_place(key_list)
    key_list.set_defaults(func=list_keys)
    key_revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    key_revoke.add_argument("key_id", metavar="ID", help="the key's id, as `sdrest users keys list` shows it")
    _add_place(key_revoke)
    key_revoke.set_defaults(func=revoke_key)


def _add_place(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the server's data dir (env: SDREST_DATA_DIR, default: sdrest-data)")
    parser.add_argument("--config", type=Path, default=None, help="the server's YAML config file (env: SDREST_CONFIG)")


def _add_password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (one line) instead of prompting")


def _store(args: argparse.Namespace) -> AuthStore:
    config = load_config({"data_dir": args.data_dir, "config": args.config})
    return AuthStore(config.data_dir / "auth.sqlite3")


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin, or asked twice without echo."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise ValueError("no terminal to ask the password on: pass --password-stdin and pipe it in")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the two passwords differ")
    check_new_password(password)
    return password


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "-"


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def add_user(args: argparse.Namespace) -> int:
    """``sdrest users add``."""
    store = _store(args)
    password = _password(args)
    try:
        store.add_user(args.name, args.role, hash_password(password))
    except AuthStoreError as exc:
        raise ValueError(str(exc)) from None
    print(f"added {args.role} {args.name}")
    return 0


def _change(args: argparse.Namespace, verb: str, change: Any) -> int:
    try:
        change(_store(args))
    except AuthStoreError as exc:
        raise ValueError(str(exc)) from None
    print(f"{verb} {args.name}")
    return 0


def set_password(args: argparse.Namespace) -> int:
    """``sdrest users passwd``."""
    password = _password(args)
    return _change(args, "changed the password of", lambda s: s.set_password(args.name, hash_password(password)))


def remove_user(args: argparse.Namespace) -> int:
    """``sdrest users remove``."""
    return _change(args, "removed", lambda s: s.remove_user(args.name))


def disable_user(args: argparse.Namespace) -> int:
    """``sdrest users disable``."""
    return _change(args, "disabled", lambda s: s.set_disabled(args.name, True))


def enable_user(args: argparse.Namespace) -> int:
    """``sdrest users enable``."""
    return _change(args, "enabled", lambda s: s.set_disabled(args.name, False))


def set_role(args: argparse.Namespace) -> int:
    """``sdrest users role``."""
    return _change(args, f"made {args.role}:", lambda s: s.set_role(args.name, args.role))


def list_users(args: argparse.Namespace) -> int:
    """``sdrest users list``."""
    users = _store(args).users()
    if args.json:
        print(json.dumps([u.to_dict() for u in users], indent=2))
    elif not users:
        print("no users yet: add one with `sdrest users add NAME --role admin`")
    else:
        _table([[u.username, u.role, u.source, "disabled" if u.disabled else "active", _when(u.created_at),
                 _when(u.last_login)] for u in users], ["USER", "ROLE", "SOURCE", "STATE", "CREATED", "LAST LOGIN"])
    return 0


def add_key(args: argparse.Namespace) -> int:
    """``sdrest users keys add``: prints the key once, on stdout alone (so a script can capture it)."""
    store = _store(args)
    try:
        record, key = store.add_key(args.name, args.label)
    except AuthStoreError as exc:
        raise ValueError(str(exc)) from None
    print(f"key {record.id} for {record.username} ({record.label}); it is shown only now:", file=sys.stderr)
    print(key)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """``sdrest users keys list``."""
    keys = _store(args).keys(args.name)
    if args.json:
        print(json.dumps([k.to_dict() for k in keys], indent=2))
    elif not keys:
        print("no API keys")
    else:
        _table([[k.id, k.username, k.label, "revoked" if k.revoked_at else "live", _when(k.created_at),
                 _when(k.last_used)] for k in keys], ["ID", "USER", "LABEL", "STATE", "CREATED", "LAST USED"])
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    """``sdrest users keys revoke``."""
    if not _store(args).revoke_key(args.key_id):
        raise ValueError(f"no live key {args.key_id!r}")
    print(f"revoked key {args.key_id}")
    return 0
