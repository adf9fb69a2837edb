"""Who may change what everybody sees: viewers and editors, and the one place every write is allowed or refused.

The app and the command line both write through the actions here (`import_files`, `drop_tables`, `restore`,
`save_mapping`, `add_checkin`); each checks the actor's role first and records the actor's name with the change.

Roles come from the deployment's settings (`[kpi]` in `.streamlit/secrets.toml`, see `Settings`):

- nothing set: editing is open to everyone who reaches the app (the start command listens on this machine only);
- `editor_password_hash`: visitors view; the password (kept only as an argon2 hash) unlocks editing for a session;
- Streamlit's OIDC login (`[auth]`): the editor role from `editor_emails` or a group claim (`editor_group` in
  the `group_claim` list); `viewing = "login"` makes viewing need a login too.

The command line is an editor: whoever runs it can open the database file anyway.
"""
from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from kpicore.errors import BadParameter, KpiError


class Role(Enum):
    VIEWER = "viewer"
    EDITOR = "editor"


class NotAllowed(KpiError):
    """A write asked for by someone without the editor role."""


@dataclass(frozen=True)
class Actor:
    """Who does something: the name recorded with each change, and the role."""

    name: str
    role: Role
    named: bool = True  # False: editing is open to everyone and nobody signs in, so each change is signed by hand

    @property
    def editor(self) -> bool:
        return self.role is Role.EDITOR

    def require_editor(self, action: str) -> None:
        """NotAllowed unless an editor asks."""
        if not self.editor:
            raise NotAllowed(f"{action} needs the editor role; {self.name} may view only. Ask an editor, or unlock "
                             "editing in the sidebar.")


def command_line() -> Actor:
    """The person at the command line: an editor (they can open the database file anyway)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    return Actor(f"{user} (command line)", Role.EDITOR)


VIEWING = ("open", "login")
ANYONE = "anyone (open editing)"  # who a change is by where editing is open and nobody signs in


@dataclass(frozen=True)
class Settings:
    """The deployment's access settings (`[kpi]` in secrets.toml)."""

    editor_password_hash: str | None = None
    viewing: str = "open"  # "login": viewing needs an OIDC login too
    editor_emails: frozenset[str] = field(default_factory=frozenset)
    editor_group: str | None = None
    group_claim: str = "groups"

    @classmethod
    def from_mapping(cls, given: Mapping[str, object]) -> Settings:
        """Settings from `[kpi]`; BadParameter names a setting that cannot be used."""
        known = {"editor_password_hash", "viewing", "editor_emails", "editor_group", "group_claim"}
        unknown = sorted(set(given) - known)
        if unknown:
            raise BadParameter(f"secrets.toml [kpi]: unknown setting(s) {', '.join(unknown)}; the settings are "
                               f"{', '.join(sorted(known))}.")
        viewing = str(given.get("viewing", "open"))
        if viewing not in VIEWING:
            raise BadParameter(f"secrets.toml [kpi] viewing: '{viewing}' is not one of {', '.join(VIEWING)}.")
        emails = given.get("editor_emails", ())
        if isinstance(emails, str) or not isinstance(emails, Iterable):
            raise BadParameter("secrets.toml [kpi] editor_emails: give a list, e.g. editor_emails = "
                               "[\"ana@example.com\"].")
        hashed = given.get("editor_password_hash")
        if hashed is not None and not str(hashed).startswith("$argon2"):
            raise BadParameter("secrets.toml [kpi] editor_password_hash: not an argon2 hash. Make one with "
                               "'kpicore hash-password' and paste the line it prints.")
        group = given.get("editor_group")
        return cls(None if hashed is None else str(hashed), viewing, frozenset(str(e).lower() for e in emails),
                   None if group is None else str(group), str(given.get("group_claim", "groups")))

    @property
    def open_editing(self) -> bool:
        """Whether everyone may edit: no password and no editor list or group is set."""
        return self.editor_password_hash is None and not self.editor_emails and self.editor_group is None

    def role_of(self, claims: Mapping[str, object]) -> Role:
        """The role of a logged-in user from their OIDC claims: an editor by e-mail or by group."""
        email = str(claims.get("email") or "").lower()
        groups = claims.get(self.group_claim) or ()
        groups = [groups] if isinstance(groups, str) else list(groups) if isinstance(groups, Sequence) else []
        if (email and email in self.editor_emails) or (self.editor_group is not None and self.editor_group in groups):
            return Role.EDITOR
        return Role.EDITOR if self.open_editing else Role.VIEWER

    def password_unlocks(self, password: str) -> bool:
        """Whether the password matches the editor password's hash (argon2id, salted)."""
        if self.editor_password_hash is None or not password:
            return False
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return PasswordHasher().verify(self.editor_password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def hash_password(password: str) -> str:
    """The argon2id hash (with its own random salt) of an editor password, for secrets.toml."""
    if len(password) < 10:
        raise BadParameter("An editor password needs at least 10 characters.")
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)
