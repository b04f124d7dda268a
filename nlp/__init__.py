"""cdpd: tag diplomacy functions and security domains in documents, and map city vs. public diplomacy."""

__version__ = "0.1.0"
