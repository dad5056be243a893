"""Store configuration: a URL-like string or a dict, parsed once, typed by the store's declared options.

``"faiss:///var/data/idx?metric=cosine"`` and ``{"backend": "faiss", "path": "/var/data/idx",
"metric": "cosine"}`` are the same configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from vectorknobs.errors import ConfigError

_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
SCHEME_PATTERN = _SCHEME  # what a registered scheme must match to be reachable from a config
_LOCATION_KEYS = ("host", "port", "user", "password", "path")
# options whose values are credentials (``?api_key=...``): never shown by ``redacted()``
_SECRET_OPTION = re.compile(r"(password|passwd|secret|token|api_?key|credentials?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Option:
    """One configuration option a store accepts: its parser, default and a line of help."""

    parse: Callable[[Any], Any]
    default: Any
    help: str


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an int, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class StoreConfig:
    """A parsed configuration. ``params`` hold the raw options until ``resolve`` types them."""

    scheme: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, options: Mapping[str, Option]) -> dict[str, Any]:
        """Typed values for every declared option; an unknown or unparsable option is a ``ConfigError``."""
        unknown = sorted(set(self.params) - set(options))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for {self.scheme}://; "
                f"known: {', '.join(sorted(options)) or 'none'}"
            )
        values: dict[str, Any] = {}
        for name, option in options.items():
            if name not in self.params:
                values[name] = option.default
                continue
            try:
                values[name] = option.parse(self.params[name])
            except (TypeError, ValueError) as err:
                raise ConfigError(f"option {name}={self.params[name]!r} for {self.scheme}://: {err}") from None
        return values

    def redacted(self) -> str:
        """The configuration as a URL, without the password or any credential-like option."""
        auth = f"{self.user or ''}:***@" if self.password else (f"{self.user}@" if self.user else "")
        host = f"[{self.host}]" if self.host and ":" in self.host else (self.host or "")
        netloc = f"{auth}{host}{f':{self.port}' if self.port is not None else ''}"
        query = "&".join(f"{k}={'***' if _SECRET_OPTION.search(k) else v}" for k, v in self.params.items())
        return f"{self.scheme}://{netloc}{self.path or ''}{'?' + query if query else ''}"


def parse_config(config: str | Mapping[str, Any]) -> StoreConfig:
    """Parse ``"scheme://..."`` or ``{"backend": scheme, ...}``."""
    if isinstance(config, str):
        return _parse_url(config)
    if isinstance(config, Mapping):
        return _parse_mapping(config)
    raise ConfigError(f"a store config is a URL string or a dict, got {type(config).__name__}")


def _parse_url(url: str) -> StoreConfig:
    if "://" not in url:
        raise ConfigError(f"store URL {url!r} has no scheme; write e.g. 'memory://' or 'faiss:///path/to/dir'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"malformed store URL {url!r}: {err}") from None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        raise ConfigError(f"malformed scheme in {url!r}")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key in params:
            raise ConfigError(f"option {key!r} is given twice in {url!r}")
        params[key] = value
    return StoreConfig(
        scheme=scheme,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        path=unquote(parts.path) or None,
        params=params,
    )


def _parse_mapping(data: Mapping[str, Any]) -> StoreConfig:
    backend = data.get("backend")
    if not isinstance(backend, str) or not _SCHEME.fullmatch(backend.lower()):
        raise ConfigError("a config dict needs 'backend': the store's scheme, e.g. {'backend': 'memory'}")
    location = {key: data[key] for key in _LOCATION_KEYS if data.get(key) is not None}
    if "port" in location:
        try:
            location["port"] = parse_int(location["port"])
        except (TypeError, ValueError):
            raise ConfigError(f"port must be an int, got {data['port']!r}") from None
    params = {k: v for k, v in data.items() if k not in (*_LOCATION_KEYS, "backend")}
    return StoreConfig(scheme=backend.lower(), params=params, **location)
