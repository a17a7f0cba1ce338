"""Asyncio-era compatibility for plugins ported from Pulp's stages API.

The shim is filled in by a later change; importing it already works.
"""

__all__: list[str] = []
