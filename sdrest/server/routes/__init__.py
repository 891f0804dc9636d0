"""The native API's routes, one module per concept; each exposes ``routes() -> list[ApiRoute]``."""
