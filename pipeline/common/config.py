"""Configuration from environment variables, as Terraform sets them on each function."""

from __future__ import annotations

import os


class ConfigError(RuntimeError):
    """A required setting is missing; names the variable so the deploy can be fixed."""


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def optional(name: str, default: str) -> str:
    return os.environ.get(name) or default


def key_prefix(name: str, default: str) -> str:
    """A prefix setting such as `/RefinerOutput/` as an S3 key prefix (`RefinerOutput/`)."""
    value = optional(name, default).lstrip("/")
    return value if value.endswith("/") else value + "/"
