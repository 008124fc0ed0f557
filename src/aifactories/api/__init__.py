"""The REST API (FastAPI): thin over the services. ``create_app(settings)`` builds it."""
