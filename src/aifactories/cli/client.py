"""A small HTTP client of the API that turns error bodies into one exception."""

from __future__ import annotations

from typing import Any

import httpx

from aifactories.cli.config import Profile


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Client:
    def __init__(self, profile: Profile, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
        self._http = httpx.Client(base_url=profile.server, headers=headers, timeout=timeout)
        self.server = profile.server

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                0,
                "unreachable",
                f"cannot reach the aifactories server at {self.server} ({exc}); "
                "is 'aif up' running? set AIFACTORIES_SERVER or run 'aif login'",
            ) from None
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
