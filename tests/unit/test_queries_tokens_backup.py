"""Listing servers (filters, pages), API tokens (hash only, revocation), database backups."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from containervps.config import Settings
from containervps.db.backup import backup_database
from containervps.db.engine import session_scope
from containervps.db.models import Tenant
from containervps.errors import InvalidInput, Unauthorized
from containervps.services.servers import queries
from containervps.services.tenancy import tokens
from tests.unit.fakes import create, make_tenant


def test_list_filters_and_pagination(db: Settings) -> None:
    tenant_id = make_tenant(db, max_servers=10)
    for i in range(5):
        create(db, tenant_id, f"n{i}", labels={"env": "prod" if i % 2 else "dev", "tier": "web"})
    rows, total = queries.list_servers(db, tenant_id=tenant_id, per_page=2, page=2)
    assert total == 5 and [r.name for r in rows] == ["n2", "n3"]
    assert queries.list_servers(db, tenant_id=tenant_id, label_selector="env=prod")[1] == 2
    assert queries.list_servers(db, tenant_id=tenant_id, label_selector="tier,env=dev")[1] == 3
    assert queries.list_servers(db, tenant_id=tenant_id, label_selector="missing")[1] == 0
    with pytest.raises(InvalidInput):
        queries.list_servers(db, tenant_id=tenant_id, label_selector="bad key")


def test_tokens_hash_only_and_revocation(db: Settings) -> None:
    tenant_id = make_tenant(db)
    row, secret = tokens.create_token(db, name="ci", tenant_id=tenant_id)
    assert secret not in row.token_hash and row.token_hash == tokens.hash_token(secret)
    ident = tokens.authenticate(db, secret)
    assert ident.tenant_id == tenant_id and not ident.is_admin
    tokens.revoke_token(db, row.id or 0)
    for bad in (secret, "", None, "cvps_nope"):
        with pytest.raises(Unauthorized):
            tokens.authenticate(db, bad)
    with pytest.raises(InvalidInput):
        tokens.create_token(db, name="x", tenant_id=tenant_id, is_admin=True)


def test_db_backup_is_a_consistent_copy(db: Settings, tmp_path: Path) -> None:
    make_tenant(db)
    target = tmp_path / "backups" / "copy.db"
    size = backup_database(db, target)
    assert size > 0 and target.exists()
    copy = Settings(data_dir=tmp_path, database_url=f"sqlite:///{target}")
    with session_scope(copy) as session:
        assert session.exec(select(Tenant)).first() is not None
    with pytest.raises(InvalidInput):
        backup_database(db, Path(db.db_url.removeprefix("sqlite:///")))
