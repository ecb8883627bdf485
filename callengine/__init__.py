"""callengine: a self-hosted, privacy-first call-me-back engine for Asterisk."""

__version__ = "0.1.0"
