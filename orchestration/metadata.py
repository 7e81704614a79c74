"""Metadata helpers shared by the asset modules."""

import base64

import dagster as dg


def image_metadata(png: bytes, title: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI (markdown with a data URI)."""
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")
