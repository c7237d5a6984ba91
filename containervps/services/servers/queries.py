"""Reading servers: validation of names and labels, one server, a filtered page of them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.errors import Forbidden, InvalidInput, NotFound
from containervps.schemas.bounds import as_id

__all__ = [
    "LIVE",
    "find_server",
    "get_server",
    "held_by_live",
    "list_servers",
    "live_server",
    "parse_selector",
    "raise_protected",
    "selector_matches",
    "validate_labels",
    "validate_name",
]

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]{0,63}$")
MAX_LABELS = 32
LIVE = col(Server.deleted_at).is_(None)


def held_by_live(session: Session, column: Any) -> set[Any]:
    """The values of a Server column that live servers hold (NULLs left out): ports and
    addresses that are taken."""
    return set(session.exec(select(column).where(LIVE, col(column).is_not(None))).all())


def validate_name(name: str) -> None:
    """Hostname rules: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'."""
    if not HOSTNAME.match(name):
        raise InvalidInput(
            f"invalid server name {name!r}: 1-63 characters of a-z, 0-9 and '-', "
            "not starting or ending with '-'",
            details={"field": "name", "value": name[:100]},
        )


def validate_labels(labels: dict[str, str]) -> None:
    """Label keys like hostnames (plus . _ /), values up to 63 of [A-Za-z0-9._-]."""
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"at most {MAX_LABELS} labels", details={"field": "labels"})
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise InvalidInput(f"invalid label key {key!r}", details={"field": "labels"})
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise InvalidInput(f"invalid label value {value!r}", details={"field": "labels"})


def parse_selector(text: str, *, field: str = "label_selector") -> list[tuple[str, str | None]]:
    """``key=value`` (the label has that value) or ``key`` (has the label) terms,
    comma-separated; InvalidInput naming ``field`` when a term is malformed."""
    terms: list[tuple[str, str | None]] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, eq, value = term.partition("=")
        if not LABEL_KEY.match(key) or (eq and not LABEL_VALUE.match(value)):
            raise InvalidInput(f"invalid label selector {term!r}", details={"field": field})
        terms.append((key, value if eq else None))
    return terms


def selector_matches(terms: list[tuple[str, str | None]], labels: dict[str, str]) -> bool:
    """Whether labels satisfy every term of a parsed selector."""
    return all(key in labels and value in (None, labels[key]) for key, value in terms)


def raise_protected(server_id: int, what: str) -> None:
    """Refuse an action that the server's protection flag forbids."""
    raise Forbidden(
        f"server {server_id} is protected against {what}",
        details={"protection": what},
        resolution=f"turn off {what} protection first (actions/change_protection)",
    )


def live_server(session: Session, *, server_id: int, tenant_id: int | None) -> Server:
    """A live server in this session (another tenant's id is NotFound)."""
    server = session.get(Server, server_id)
    if server is None or server.deleted_at is not None:
        raise NotFound(f"server {server_id} not found")
    if tenant_id is not None and server.tenant_id != tenant_id:
        raise NotFound(f"server {server_id} not found")
    return server


def get_server(settings: Settings, *, server_id: int, tenant_id: int | None) -> Server:
    """A live server; another tenant's id is NotFound (``tenant_id`` None: admin)."""
    with session_scope(settings) as session:
        return live_server(session, server_id=server_id, tenant_id=tenant_id)


def find_server(settings: Settings, *, ref: str, tenant_id: int | None) -> Server:
    """A live server by id or (within a tenant) by name (CLI convenience)."""
    server_id = as_id(ref)
    if server_id is not None:
        return get_server(settings, server_id=server_id, tenant_id=tenant_id)
    with session_scope(settings) as session:
        query = select(Server).where(Server.name == ref, LIVE)
        if tenant_id is not None:
            query = query.where(Server.tenant_id == tenant_id)
        rows = session.exec(query).all()
    if len(rows) != 1:
        what = "not found" if not rows else "is ambiguous: pass --tenant or the id"
        raise NotFound(f"server {ref!r} {what}")
    return rows[0]


def list_servers(
    settings: Settings,
    *,
    tenant_id: int | None,
    status: str | None = None,
    label_selector: str | None = None,
    name: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[Server], int]:
    """One page of live servers (and the total), filtered by status, name and labels.

    ``label_selector`` is ``key=value`` or ``key`` (has the label), comma-separated.
    """
    query = select(Server).where(LIVE)
    if tenant_id is not None:
        query = query.where(Server.tenant_id == tenant_id)
    if status:
        query = query.where(Server.status == status)
    if name:
        query = query.where(Server.name == name)
    for key, value in parse_selector(label_selector or ""):
        # The key is validated by parse_selector, so quoting it into the JSON path is safe.
        extracted = func.json_extract(Server.labels, f'$."{key}"')
        query = query.where(extracted.is_not(None) if value is None else extracted == value)
    with session_scope(settings) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(Server.id)).offset((page - 1) * per_page).limit(per_page)
        ).all()
        return list(rows), int(total)
