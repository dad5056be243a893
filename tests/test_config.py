"""Store configuration: URL and dict forms, typed options, redaction."""

from __future__ import annotations

from typing import Any

import pytest
from vectorknobs import ConfigError, DistanceMetric, Option, StoreConfig
from vectorknobs.config import parse_bool, parse_config, parse_int

# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", StoreConfig("memory")),
        ("MEMORY://", StoreConfig("memory")),
        ("memory:///var/data/idx", StoreConfig("memory", path="/var/data/idx")),
        (
            "faiss:///var/data/idx?metric=cosine",
            StoreConfig("faiss", path="/var/data/idx", params={"metric": "cosine"}),
        ),
        (
            "chroma+http://host:8000/collection",
            StoreConfig("chroma+http", host="host", port=8000, path="/collection"),
        ),
        (
            "pgvector+embedded:///path/to/pgdata",
            StoreConfig("pgvector+embedded", path="/path/to/pgdata"),
        ),
        (
            "pgvector://user:pass@db.example.com:5432/db?table=docs&metric=l2",
            StoreConfig(
                "pgvector", host="db.example.com", port=5432, user="user", password="pass", path="/db",
                params={"table": "docs", "metric": "l2"},
            ),
        ),
        (
            "pgvector://us%40er:p%40ss%3Aw%2Frd@host/db%20name?table=my%20docs&x=a%26b",
            StoreConfig(
                "pgvector", host="host", user="us@er", password="p@ss:w/rd", path="/db name",
                params={"table": "my docs", "x": "a&b"},
            ),
        ),
        ("elasticsearch://host:9200/index", StoreConfig("elasticsearch", host="host", port=9200, path="/index")),
        ("weaviate://HOST:8080/Collection", StoreConfig("weaviate", host="host", port=8080, path="/Collection")),
        ("x-store.v2://h", StoreConfig("x-store.v2", host="h")),
        ("s://h/?empty=&flag", StoreConfig("s", host="h", path="/", params={"empty": "", "flag": ""})),
        ("pgvector://[::1]:5432/db", StoreConfig("pgvector", host="::1", port=5432, path="/db")),
        ("pgvector://user@host", StoreConfig("pgvector", host="host", user="user")),
    ],
)
def test_url_parsing(url: str, expected: StoreConfig) -> None:
    parsed = parse_config(url)
    assert parsed == expected
    assert parsed.password == expected.password  # not in __eq__'s repr but compared


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("memory", "has no scheme"),
        ("/var/data", "has no scheme"),
        ("", "has no scheme"),
        ("memory:/x", "has no scheme"),
        ("://host", "malformed scheme"),
        ("my_store://x", "malformed scheme"),
        ("1abc://x", "malformed scheme"),
        ("pg://host:99999/db", "malformed store URL"),
        ("pg://host:port/db", "malformed store URL"),
        ("pg://h/?table=a&table=b", "option 'table' is given twice"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(url)


def test_config_must_be_a_string_or_dict() -> None:
    with pytest.raises(ConfigError, match="URL string or a dict, got int"):
        parse_config(5)  # type: ignore[arg-type]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_config("nope")


# -- dicts --------------------------------------------------------------------------------------


def test_dict_form_equals_url_form() -> None:
    from_url = parse_config("faiss:///var/data/idx?metric=cosine")
    from_dict = parse_config({"backend": "faiss", "path": "/var/data/idx", "metric": "cosine"})
    assert from_url == from_dict


def test_dict_form_location_keys() -> None:
    parsed = parse_config(
        {"backend": "PGVector", "host": "h", "port": "5433", "user": "u", "password": "p", "path": "/db",
         "table": "docs", "batch": 500, "skip": None}
    )
    assert parsed.scheme == "pgvector"
    assert (parsed.host, parsed.port, parsed.user, parsed.password, parsed.path) == ("h", 5433, "u", "p", "/db")
    assert parsed.params == {"table": "docs", "batch": 500, "skip": None}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "needs 'backend'"),
        ({"backend": 5}, "needs 'backend'"),
        ({"backend": "bad scheme"}, "needs 'backend'"),
        ({"path": "/x"}, "needs 'backend'"),
        ({"backend": "pg", "port": "high"}, "port must be an int"),
        ({"backend": "pg", "port": True}, "port must be an int"),
    ],
)
def test_bad_dicts(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(data)


# -- options ------------------------------------------------------------------------------------

OPTIONS = {
    "metric": Option(DistanceMetric.parse, DistanceMetric.COSINE, "metric"),
    "batch": Option(parse_int, 100, "rows per batch"),
    "fsync": Option(parse_bool, True, "fsync on write"),
    "table": Option(str, "docs", "table name"),
}


def test_resolve_types_every_option_and_fills_defaults() -> None:
    values = parse_config("pg://h/db?metric=l2&batch=500&fsync=off").resolve(OPTIONS)
    assert values == {"metric": DistanceMetric.EUCLIDEAN, "batch": 500, "fsync": False, "table": "docs"}
    assert type(values["batch"]) is int
    assert parse_config("pg://h").resolve(OPTIONS) == {
        "metric": DistanceMetric.COSINE, "batch": 100, "fsync": True, "table": "docs"
    }


def test_resolve_accepts_typed_values_from_a_dict() -> None:
    values = parse_config({"backend": "pg", "batch": 7, "fsync": False, "metric": DistanceMetric.DOT_PRODUCT}
                          ).resolve(OPTIONS)
    assert values["batch"] == 7
    assert values["fsync"] is False
    assert values["metric"] is DistanceMetric.DOT_PRODUCT


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("pg://h?tabel=docs&zzz=1").resolve(OPTIONS)
    message = str(info.value)
    assert "tabel, zzz" in message
    assert "known: batch, fsync, metric, table" in message
    with pytest.raises(ConfigError, match="known: none"):
        parse_config("pg://h?x=1").resolve({})


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("batch=ten", "option batch='ten'"),
        ("batch=true", "option batch"),
        ("fsync=maybe", "expected true/false"),
        ("metric=hamming", "unknown metric"),
    ],
)
def test_unparsable_option(query: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(f"pg://h?{query}").resolve(OPTIONS)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("False", False), ("no", False),
     ("off", False), (True, True), (False, False)],
)
def test_parse_bool(text: Any, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_int_rejects_bools() -> None:
    assert parse_int("42") == 42
    assert parse_int(42) == 42
    with pytest.raises(ValueError, match="expected an int"):
        parse_int(True)
    with pytest.raises(ValueError):
        parse_int("4.5")


# -- redaction ----------------------------------------------------------------------------------


def test_redacted_hides_the_password() -> None:
    config = parse_config("pgvector://user:s3cr3t@host:5432/db?table=docs")
    text = config.redacted()
    assert "s3cr3t" not in text
    assert text == "pgvector://user:***@host:5432/db?table=docs"
    assert "s3cr3t" not in repr(config)


def test_redacted_hides_a_password_without_a_user() -> None:
    assert parse_config("pgvector://:s3cr3t@host/db").redacted() == "pgvector://:***@host/db"


@pytest.mark.parametrize("option", ["password", "api_key", "apikey", "token", "access_token", "client_secret",
                                    "API_KEY", "credentials"])
def test_redacted_hides_credential_options(option: str) -> None:
    text = parse_config(f"es://host:9200/index?{option}=s3cr3t&index_type=hnsw").redacted()
    assert "s3cr3t" not in text
    assert f"{option}=***" in text
    assert "index_type=hnsw" in text


def test_redacted_without_secrets_is_the_url() -> None:
    assert parse_config("memory://").redacted() == "memory://"
    assert parse_config("memory:///tmp/x?autosave=false").redacted() == "memory:///tmp/x?autosave=false"
    assert parse_config("pg://u@h/db").redacted() == "pg://u@h/db"
    assert parse_config("pg://[::1]:5432/db").redacted() == "pg://[::1]:5432/db"
