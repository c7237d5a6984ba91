"""The development cluster's layout, preseeds and join tokens (pure; the real cluster:
tests/integration/test_dev_cluster.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from containervps.config import Settings
from containervps.errors import InvalidInput
from containervps.lxd.cluster import join_token
from containervps.services.cluster.layout import cluster_layout
from containervps.services.cluster.preseed import bootstrap_preseed, join_preseed, render


def _settings(**overrides: object) -> Settings:
    return Settings(cluster_dir=Path("/srv/cl"), **overrides)  # type: ignore[arg-type]


def test_layout_names_addresses_and_directories() -> None:
    layout = cluster_layout(_settings(), members=3)
    assert layout.bridge == "cvpsclbr0" and layout.gateway == "10.214.0.1"
    assert [m.name for m in layout.members] == ["member1", "member2", "member3"]
    assert [m.address for m in layout.members] == ["10.214.0.11", "10.214.0.12", "10.214.0.13"]
    assert [m.netns for m in layout.members] == [f"cvpscl-member{n}" for n in (1, 2, 3)]
    assert all(len(m.veth) <= 15 for m in layout.members)  # IFNAMSIZ
    second = layout.members[1]
    assert second.https_address == "10.214.0.12:8443"
    assert second.lxd_dir == Path("/srv/cl/member2")
    assert second.socket == Path("/srv/cl/member2/unix.socket")
    assert second.pid_file == Path("/srv/cl/member2.pid")
    assert second.log_file.parent == Path("/srv/cl/logs")
    assert layout.bootstrap.name == "member1"


@pytest.mark.parametrize(
    ("members", "subnet", "field"),
    [
        (0, "10.214.0.1/24", "members"),
        (10, "10.214.0.1/24", "members"),
        (3, "10.214.0.1/29", "cluster_subnet"),  # .0-.7: no room for .11-.13
        (3, "not-a-subnet", "cluster_subnet"),
        (3, "10.214.0.12/24", "cluster_subnet"),  # the host would take member 2's address
    ],
)
def test_layout_refuses_what_cannot_work(members: int, subnet: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cluster_layout(_settings(cluster_subnet=subnet), members=members)
    assert refused.value.details["field"] == field


@pytest.mark.parametrize("prefix", ["", "Cl", "1cl", "cl-x", "toolongprefix"])
def test_layout_refuses_prefixes_that_make_bad_interface_names(prefix: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cluster_layout(_settings(cluster_prefix=prefix), members=3)
    assert refused.value.details["field"] == "cluster_prefix"


def test_a_prefix_names_namespaces_and_veths() -> None:
    member = cluster_layout(_settings(cluster_prefix="cvpsct"), members=2).members[1]
    assert (member.netns, member.veth) == ("cvpsct-member2", "cvpsctv2")


def test_a_small_subnet_that_fits_is_taken() -> None:
    layout = cluster_layout(_settings(cluster_subnet="10.214.0.1/28"), members=3)  # .13 < .15
    assert layout.prefix_len == 28 and layout.members[2].address == "10.214.0.13"


def test_bootstrap_preseed_listens_on_the_member_address_and_enables_clustering() -> None:
    boot = cluster_layout(_settings(cluster_port=9443), members=1).bootstrap
    document = yaml.safe_load(render(bootstrap_preseed(boot)))  # what lxd init parses
    assert document == {
        "config": {
            "core.https_address": "10.214.0.11:9443",
            "images.auto_update_interval": "0",
        },
        "cluster": {"server_name": "member1", "enabled": True},
    }


def test_join_preseed_carries_the_token_as_password_with_address_and_certificate() -> None:
    layout = cluster_layout(_settings(), members=3)
    pem = "-----BEGIN CERTIFICATE-----\nABC\n-----END CERTIFICATE-----\n"
    text = render(
        join_preseed(layout.members[2], bootstrap=layout.bootstrap, certificate=pem, token="tok")
    )
    cluster = yaml.safe_load(text)["cluster"]
    assert cluster["server_name"] == "member3" and cluster["enabled"] is True
    assert cluster["server_address"] == "10.214.0.13:8443"
    assert cluster["cluster_address"] == "10.214.0.11:8443"
    assert cluster["cluster_certificate"] == pem  # the PEM's newlines survive
    assert cluster["cluster_password"] == "tok"
    assert cluster["member_config"] == []
    assert "config" not in yaml.safe_load(text)  # a joining member takes the cluster's


def test_join_token_is_what_lxc_cluster_add_prints() -> None:
    meta = {
        "serverName": "member2",
        "secret": "s3cret",
        "fingerprint": "ab" * 32,
        "addresses": ["10.214.0.11:8443"],
        "expiresAt": "0001-01-01T00:00:00Z",
    }
    decoded = json.loads(base64.b64decode(join_token(meta)))
    assert decoded == {
        "server_name": "member2",
        "fingerprint": "ab" * 32,
        "addresses": ["10.214.0.11:8443"],
        "secret": "s3cret",
        "expires_at": "0001-01-01T00:00:00Z",
    }
    del meta["expiresAt"]
    assert "expires_at" not in json.loads(base64.b64decode(join_token(meta)))
