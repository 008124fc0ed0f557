"""/docs served by the platform itself: Swagger UI's files come from an installed package
(fastapi-swagger ships the current Swagger UI 5, which renders OpenAPI 3.1), never from a
CDN, so the API's documentation works on a machine without internet access. ReDoc, which
FastAPI loads from a CDN, is not offered."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/swagger-ui"


def _assets() -> Path:
    # by name: the package has no type information, and only its files are used
    return Path(str(resources.files("fastapi_swagger.resources")))


def install(app: FastAPI) -> None:
    """Serve /docs from local files; call with ``FastAPI(docs_url=None, redoc_url=None)``."""
    app.mount(ASSETS_URL, StaticFiles(directory=_assets()), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
