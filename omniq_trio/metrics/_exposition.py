"""Rendering a registry for a scrape, in the format the scraper asks for."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

__all__ = ["render"]


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """``registry`` as Prometheus text, or OpenMetrics when ``accept`` asks for it;
    returns the body and its content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
