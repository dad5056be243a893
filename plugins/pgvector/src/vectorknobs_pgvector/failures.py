"""asyncpg and OS errors as vectorknobs errors with messages that say what happened and what to do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg
from vectorknobs.errors import InvalidRecordError, StoreError, VectorknobsError, VectorValueError

_LOST = (
    asyncpg.PostgresConnectionError,  # includes "connection was closed in the middle of operation"
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,  # refused, reset, no such socket
    TimeoutError,  # connect_timeout
)


class ConnectionLostError(StoreError):
    """The connection to PostgreSQL failed or was lost. For a write, the message says whether the batch was
    written: not at all, or (when the connection broke while committing) perhaps."""

    def __init__(self, action: str, where: str, detail: str, outcome: str = "") -> None:
        self.action, self.where, self.detail, self.outcome = action, where, detail, outcome
        super().__init__(
            f"{action} failed: the connection to PostgreSQL at {where} failed or was lost ({detail})"
            f"{'; ' + outcome if outcome else ''}. The pool reconnects by itself once the server answers again."
        )

    def with_outcome(self, outcome: str) -> ConnectionLostError:
        return ConnectionLostError(self.action, self.where, self.detail, outcome)


def is_connection_failure(err: BaseException) -> bool:
    """Did ``err`` end the connection it happened on (the pool must replace it)?"""
    if isinstance(err, asyncpg.InterfaceError):
        return "closed" in str(err) or "lost" in str(err)
    # the protocol is stuck mid-error: the server ended the connection (pg_terminate_backend, a restart) and
    # asyncpg read the error before the end of the stream
    return isinstance(err, (*_LOST, asyncpg.InternalClientError))


@contextlib.contextmanager
def translated(action: str, where: str) -> Iterator[None]:
    """Turn whatever fails inside into a ``VectorknobsError`` about ``action`` on ``where``."""
    try:
        yield
    except VectorknobsError:
        raise
    except asyncpg.QueryCanceledError as err:
        raise StoreError(f"{action} on {where} was cancelled: {err} (see the option statement_timeout)") from err
    except asyncpg.TooManyConnectionsError as err:
        raise StoreError(f"{action} on {where}: {err}; lower max_pool_size or raise max_connections") from err
    except asyncpg.InsufficientPrivilegeError as err:
        raise StoreError(f"{action} on {where}: permission denied: {err}") from err
    except asyncpg.UndefinedTableError as err:
        raise StoreError(f"{action} on {where}: the table is gone ({err}); was it dropped by someone else?") from err
    except asyncpg.DataError as err:
        raise InvalidRecordError(f"{action} on {where}: PostgreSQL rejected a value: {err}") from err
    except asyncpg.PostgresError as err:
        if is_connection_failure(err):
            raise _lost(action, where, err) from err
        raise StoreError(f"{action} on {where} failed: {type(err).__name__}: {err}") from err
    except UnicodeEncodeError as err:
        raise InvalidRecordError(f"{action}: a string cannot be sent to PostgreSQL as UTF-8 ({err})") from err
    except ValueError as err:  # our codecs: a value out of halfvec range
        if "half precision" in str(err):
            raise VectorValueError(f"{action}: {err}") from err
        raise
    except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError) as err:
        if is_connection_failure(err):
            raise _lost(action, where, err) from err
        raise StoreError(f"{action} on {where} failed: {type(err).__name__}: {err}") from err


def _lost(action: str, where: str, err: BaseException) -> ConnectionLostError:
    return ConnectionLostError(action, where, f"{type(err).__name__}: {err}".rstrip(": "))
