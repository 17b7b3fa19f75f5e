"""The MTC server's input checks: names, numbers, the Shard-Meta header, the replica ring."""

from __future__ import annotations

import base64
import json

import pytest
import xxhash

from trainguard.checkpoint.mtc import shardmeta
from trainguard.checkpoint.mtc.limits import FieldError, int_field, namespace_name
from trainguard.checkpoint.mtc.namespaces import NamespaceConfig
from trainguard.checkpoint.mtc.peers import ring_target
from trainguard.errors import CorruptRecord


@pytest.mark.parametrize("name", ["job-1", "A_b-9", "x" * 128])
def test_plain_namespaces_are_accepted(name: str) -> None:
    assert namespace_name(name) == name


@pytest.mark.parametrize("name", ["", "../etc", ".hidden", "a/b", "x" * 129, "-lead", "sp ace"])
def test_other_namespaces_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(FieldError) as caught:
        namespace_name(name)
    assert caught.value.field == "namespace"


def test_int_field_names_the_field_and_the_range() -> None:
    assert int_field("7", "rank", low=0, high=7) == 7
    with pytest.raises(FieldError, match=r"^rank: 8 is not between 0 and 7$"):
        int_field("8", "rank", low=0, high=7)
    with pytest.raises(FieldError, match=r"^step: 'x1' is not an integer$"):
        int_field("x1", "step", low=0, high=9)
    with pytest.raises(FieldError, match=r"^num_ranks: is required$"):
        int_field(None, "num_ranks", low=1, high=9)


def _header(body: bytes, **extra: object) -> str:
    digest = base64.b64encode(xxhash.xxh3_128(body).digest()).decode()
    return json.dumps({"checksum": digest, "algorithm": "xxh3_128", **extra})


def test_shard_meta_verifies_the_body_it_was_made_for() -> None:
    meta = shardmeta.parse(_header(b"shard"))
    meta.verify(b"shard")
    with pytest.raises(FieldError, match=r"Shard-Meta\.checksum: does not match"):
        meta.verify(b"shard!")
    assert shardmeta.of_body(b"shard").digest == meta.digest


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "Shard-Meta"),
        ("not json", "Shard-Meta"),
        ("[1]", "Shard-Meta"),
        (json.dumps({"checksum": "AAAA", "algorithm": "md5"}), "Shard-Meta.algorithm"),
        (json.dumps({"checksum": "***"}), "Shard-Meta.checksum"),
        (json.dumps({"checksum": "AAAA"}), "Shard-Meta.checksum"),
        (json.dumps({"checksum": 5}), "Shard-Meta.checksum"),
    ],
)
def test_bad_shard_meta_headers_name_the_field(value: str | None, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        shardmeta.parse(value)
    assert caught.value.field == field


def test_namespace_config_round_trips_the_library_shape() -> None:
    config = NamespaceConfig(num_ranks=3, steps_retained=2)
    assert config.as_json() == {"num_ranks": 3, "steps_to_retain_per_rank": 2}
    assert NamespaceConfig.from_json(config.as_json()) == config
    with pytest.raises(CorruptRecord):
        NamespaceConfig.from_json({"num_ranks": 3})


def test_the_ring_sends_each_server_s_replicas_to_the_next_one() -> None:
    servers = ["http://b:1", "http://a:1", "http://c:1"]
    assert ring_target("http://a:1", servers) == "http://b:1"
    assert ring_target("http://b:1", servers) == "http://c:1"
    assert ring_target("http://c:1", servers) == "http://a:1"
    assert ring_target("http://a:1", ["http://a:1"]) is None
    assert ring_target(None, servers) == "http://a:1"
