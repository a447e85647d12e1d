"""A small demo catalogue for an Oscar shop beside mcom: a partner with stock, a T-shirt with two
size variants (parent/child), a mug and a poster, shipping countries, and the mcom store of the
shop with its sales channel id and synchronous export.

``python -m mcom.contrib.oscar.demo [--site-domain HOST:PORT] [--channel ID]`` (with
``DJANGO_SETTINGS_MODULE=mcom.contrib.oscar.settings``); idempotent. Used by
``examples/oscar-shop/run.sh`` and the adapter's tests.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PARTNER = "Main warehouse"
PARTNER_CODE = "main-warehouse"
COUNTRIES = [("DE", "DEU", "276", "Germany"), ("GB", "GBR", "826", "United Kingdom"),
             ("FR", "FRA", "250", "France"), ("US", "USA", "840", "United States")]


@dataclass(frozen=True)
class DemoProduct:
    upc: str
    title: str
    price: Decimal
    stock: int
    attributes: dict[str, Any]
    parent: str = ""


PRODUCTS = [
    DemoProduct("TSHIRT", "mcom T-shirt", Decimal("0"), 0, {"material": "cotton"}),
    DemoProduct("TSHIRT-S", "mcom T-shirt (S)", Decimal("19.00"), 40, {"size": "S", "weight": 0.2}, parent="TSHIRT"),
    DemoProduct("TSHIRT-M", "mcom T-shirt (M)", Decimal("19.00"), 40, {"size": "M", "weight": 0.22}, parent="TSHIRT"),
    DemoProduct("MUG", "mcom Mug", Decimal("9.50"), 25, {"material": "ceramic", "weight": 0.35}),
    DemoProduct("POSTER", "mcom Poster", Decimal("5.00"), 100, {"material": "paper", "weight": 0.1}),
]


def create_catalogue(*, site_domain: str = "127.0.0.1:8000", channel: str = "oscar-shop",
                     store_code: str = "oscar") -> dict[str, Any]:
    """Create (or leave as they are) the demo site, partner, countries, products and mcom store."""
    from django.contrib.sites.models import Site
    from django.db import transaction
    from oscar.core.loading import get_model

    from mcom.commerce import config
    from mcom.contrib.oscar import mirror

    Country = get_model("address", "Country")
    Partner = get_model("partner", "Partner")
    ProductClass = get_model("catalogue", "ProductClass")
    ProductAttribute = get_model("catalogue", "ProductAttribute")
    Product = get_model("catalogue", "Product")
    Category = get_model("catalogue", "Category")
    ProductCategory = get_model("catalogue", "ProductCategory")

    with transaction.atomic():
        Site.objects.update_or_create(pk=1, defaults={"domain": site_domain, "name": "mcom demo shop"})
        for a2, a3, num, name in COUNTRIES:
            Country.objects.update_or_create(iso_3166_1_a2=a2, defaults={
                "iso_3166_1_a3": a3, "iso_3166_1_numeric": num, "printable_name": name, "name": name,
                "is_shipping_country": True})
        partner, _ = Partner.objects.get_or_create(code=PARTNER_CODE, defaults={"name": PARTNER})
        pclass, _ = ProductClass.objects.get_or_create(name="Merchandise", defaults={"track_stock": True})
        for code, kind in (("material", "text"), ("size", "text"), ("weight", "float")):
            ProductAttribute.objects.get_or_create(product_class=pclass, code=code, defaults={"name": code.title(),
                                                                                           "type": kind})
        category = Category.objects.filter(name="Merch").first() or Category.objects.add_root({"name": "Merch"})
        made: dict[str, Any] = {}
        for spec in PRODUCTS:
            product = Product.objects.filter(upc=spec.upc).first()
            if product is None:
                parent = made.get(spec.parent) if spec.parent else None
                is_parent = any(p.parent == spec.upc for p in PRODUCTS)
                product = Product(upc=spec.upc, title=spec.title, parent=parent,
                                  product_class=None if parent else pclass,
                                  structure="child" if parent else ("parent" if is_parent else "standalone"))
                for code, value in spec.attributes.items():
                    setattr(product.attr, code, value)
                product.save()
                if parent is None:
                    ProductCategory.objects.get_or_create(product=product, category=category)
                if not is_parent:
                    product.stockrecords.create(partner=partner, partner_sku=spec.upc, price=spec.price,
                                                num_in_stock=spec.stock)
            made[spec.upc] = product
    # the catalogue mirror runs after commit (signals); make sure it is complete before the store is set
    mirror.mirror_products(list(made.values()))
    store = mirror.ensure_store(store_code, Site.objects.get(pk=1))
    config.set_value("mcom/general/sales_channel_id", channel, scope="store", scope_code=store.code)
    config.set_value("mcom/transport/process_order_synchronously", "1", scope="store", scope_code=store.code)
    return {"products": sorted(made), "store": store.code, "partner": partner.code}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - CLI wrapper
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-domain", default="127.0.0.1:8000")
    parser.add_argument("--channel", default="oscar-shop")
    parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.contrib.oscar.settings")
    import django

    django.setup()


if __name__ == "__main__":  # pragma: no cover
    main()
