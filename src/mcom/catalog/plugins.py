"""Extension point: adjust a product's OMS spec after mapping (the seed's "after to-specification").

A plugin is a plain function ``(product, spec) -> spec`` registered once, e.g. from a plugin
module listed in ``env.toml`` ``plugins = [...]``::

    from dataclasses import replace
    from mcom.catalog import plugins
    from mcom.catalog.messages import CustomAttribute

    def add_origin(product, spec):
        return replace(spec, custom_attributes=(*spec.custom_attributes, CustomAttribute("origin", "EU")))

    plugins.register(add_origin)

Plugins run in registration order for every product synchronised (single saves, bulk upserts
and the full export). They must be pure and fast; an exception aborts the sync of that batch.
"""

from __future__ import annotations

from collections.abc import Callable

from mcom.catalog.mappers import ProductLike
from mcom.catalog.messages import ProductSpec

ProductSpecPlugin = Callable[[ProductLike, ProductSpec], ProductSpec]

after_to_specification: list[ProductSpecPlugin] = []


def register(fn: ProductSpecPlugin) -> None:
    """Add ``fn`` once (registering the same function again is a no-op)."""
    if fn not in after_to_specification:
        after_to_specification.append(fn)


def unregister(fn: ProductSpecPlugin) -> None:
    if fn in after_to_specification:
        after_to_specification.remove(fn)


def apply(product: ProductLike, spec: ProductSpec) -> ProductSpec:
    for fn in list(after_to_specification):
        spec = fn(product, spec)
    return spec
