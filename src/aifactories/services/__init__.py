"""Services: the use cases. They own transactions; front-ends (API, CLI) stay thin."""
