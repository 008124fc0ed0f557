"""A small HTTP client of the API that turns error bodies into one exception.

httpx is imported when a client is made, not with this module: a command's --help, which
imports its module, does not pay for it (a tenth of a second).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from aifactories.cli.config import Profile

if TYPE_CHECKING:
    import httpx

IDEMPOTENCY = "Idempotency-Key"
# retries of a request with an Idempotency-Key, after 0.5 s, 1 s, 2 s
RETRIES = 3
RETRY_PAUSE_S = 0.5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _import_httpx() -> None:
    """Import httpx without its own command line (httpx._main: Click, Pygments and Rich's
    syntax module, a quarter of httpx's import time), which this program never runs; httpx
    falls back to a stub ``httpx.main`` when that module cannot be imported."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        try:
            import httpx  # noqa: F401
        finally:
            if sys.modules.get("httpx._main", True) is None:
                del sys.modules["httpx._main"]


class Client:
    def __init__(
        self,
        profile: Profile,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,  # tests: a fault between client and server
    ) -> None:
        _import_httpx()
        import httpx

        headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
        self._http = httpx.Client(
            base_url=profile.server, headers=headers, timeout=timeout, transport=transport
        )
        self.server = profile.server

    def request(self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any) -> Any:
        """``idempotent``: send a fresh Idempotency-Key and retry a lost reply (connection
        dropped, timeout, 502-504) with the same key, so the server creates one object."""
        import httpx

        attempts = RETRIES + 1 if idempotent else 1
        if idempotent:
            kwargs["headers"] = {**kwargs.get("headers", {}), IDEMPOTENCY: str(uuid.uuid4())}
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if attempt + 1 < attempts:
                    time.sleep(RETRY_PAUSE_S * 2**attempt)
                    continue
                raise ApiError(
                    0,
                    "unreachable",
                    f"cannot reach the aifactories server at {self.server} ({exc}); "
                    "is 'aif up' running? set AIFACTORIES_SERVER or run 'aif login'",
                ) from None
            if response.status_code in (502, 503, 504) and attempt + 1 < attempts:
                time.sleep(RETRY_PAUSE_S * 2**attempt)
                continue
            break
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = body.get("error", "error"), body.get("message", response.text)
                if body.get("limit"):
                    message = f"{message} (expected: {body['limit']})"
            except ValueError:
                code, message = "error", response.text or response.reason_phrase
            raise ApiError(response.status_code, code, message)
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)
