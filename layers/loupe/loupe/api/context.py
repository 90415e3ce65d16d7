"""What one request carries through its handling: ids for the logs, the caller, the client."""

from __future__ import annotations

import functools
import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from loupe.models.identity import Principal


@dataclass
class RequestState:
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    source_ip: str | None = None
    user_agent: str | None = None
    principal: Principal | None = None
    route: str | None = None
    # A guest's embed token row (what it may show, from which origins), set by the guest guard.
    guest_token: dict[str, Any] | None = None

    @functools.cached_property
    def client_ip(self) -> str | None:
        """The source address if it is one (API Gateway's console test sends a placeholder); read once,
        though the request gate, authentication and audit all ask."""
        return _address(self.source_ip) if self.source_ip else None


@functools.lru_cache(maxsize=1024)
def _address(source_ip: str) -> str | None:
    """`source_ip` written as an address, or None; a function's clients come back, so each is parsed once."""
    try:
        return str(ipaddress.ip_address(source_ip))
    except ValueError:
        return None


_state: ContextVar[RequestState | None] = ContextVar("loupe_request_state", default=None)


def begin_request(state: RequestState) -> None:
    _state.set(state)


def end_request() -> None:
    _state.set(None)


def current_request_or_none() -> RequestState | None:
    return _state.get()


def current_request() -> RequestState:
    state = _state.get()
    if state is None:
        raise RuntimeError("no request in progress")
    return state
