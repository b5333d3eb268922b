"""Settings and policy tables: everything ctq reads from the environment or looks up by code."""

from config.settings import Settings

__all__ = ["Settings"]
