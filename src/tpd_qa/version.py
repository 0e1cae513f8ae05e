"""The package version: the single source, read by ``pyproject.toml`` as well."""

__version__ = "0.1.0"
