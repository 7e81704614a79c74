"""The product catalogue: categories with their price ranges and margins, and products."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    code: str
    min_price: float
    max_price: float
    margin: float
    items: tuple[str, ...]


# Margins differ by category: fresh food and electronics are thin, apparel and personal care fat.
# Some item names carry commas and inch marks, as real catalogues do.
CATEGORIES: tuple[Category, ...] = (
    Category(
        "fresh_food",
        8,
        180,
        0.18,
        ("Jasmine Rice 5kg", "Free-range Eggs, 30 pcs", "Pork Belly 1kg", "Fresh Noodles", "Seasonal Fruit Box"),
    ),
    Category(
        "packaged_food",
        5,
        260,
        0.24,
        ("Instant Noodles, 5-pack", "Sichuan Hotpot Base", "Soy Sauce 1.8L", "Mooncake Gift Box", "Sunflower Seeds"),
    ),
    Category(
        "beverages",
        3,
        420,
        0.26,
        ("Green Tea 500ml, 15-pack", "Oolong Tea Tin", "Baijiu 500ml", "Mineral Water 24-pack", "Soy Milk Powder"),
    ),
    Category(
        "personal_care",
        9,
        600,
        0.48,
        ("Shampoo 750ml", "Toothpaste, 3-pack", "Face Cream", "Body Wash", "Electric Toothbrush Heads"),
    ),
    Category(
        "household",
        6,
        300,
        0.36,
        ("Laundry Detergent 3kg", "Tissue Paper, 24 rolls", "Dish Soap", "Trash Bags", "Mop Set"),
    ),
    Category(
        "baby_maternity",
        15,
        900,
        0.38,
        ("Infant Formula 900g", "Diapers L, 60 pcs", "Baby Wipes", "Feeding Bottle", "Stroller Blanket"),
    ),
    Category(
        "apparel", 39, 1500, 0.55, ("Down Jacket", "Cotton T-Shirt", "Running Shoes", "Wool Sweater", "Denim Jeans")
    ),
    Category(
        "home_textiles",
        29,
        2000,
        0.48,
        ("Silk Duvet 200x230", "Bath Towel Set", "Pillow, Memory Foam", "Bedsheet Set", "Curtains 2.6m"),
    ),
    Category(
        "kitchenware",
        19,
        1800,
        0.40,
        ("Wok 32cm, non-stick", "Knife Set", "Rice Bowl Set", "Steamer Basket", "Thermos Flask"),
    ),
    Category(
        "small_appliances",
        99,
        3500,
        0.22,
        ("Rice Cooker 4L", "Air Fryer", "Soymilk Maker", "Electric Kettle", "Vacuum Cleaner"),
    ),
    Category(
        "electronics",
        199,
        9000,
        0.12,
        ('Smart TV 55"', 'Tablet 10.1"', "Wireless Earbuds", "Power Bank 20000mAh", "Smartwatch"),
    ),
)

BRANDS: tuple[str, ...] = ("Jiahe", "Meilin", "Huaxin", "Yuecheng", "Tianyi", "Hongda", "Lianhua", "Xinghe")
VARIANTS: tuple[str, ...] = ("Classic", "Premium", "Select", "Value", "Plus", "Deluxe")


@dataclass(frozen=True)
class Catalogue:
    """Products (index = product number - 1) and per-category lookup tables.

    ``by_category_price`` lists product indices sorted by (category, list price);
    ``category_start`` gives each category's first position in it (plus the end).
    """

    category: np.ndarray
    name: np.ndarray
    list_price_cents: np.ndarray
    unit_cost_cents: np.ndarray
    by_category_price: np.ndarray
    category_start: np.ndarray

    @property
    def size(self) -> int:
        return len(self.category)

    def log_price_key(self) -> np.ndarray:
        """Sort key (category * 100 + log list price) aligned with ``by_category_price``."""
        index = self.by_category_price
        return self.category[index] * 100.0 + np.log(self.list_price_cents[index] / 100.0)


def category_codes() -> tuple[str, ...]:
    return tuple(c.code for c in CATEGORIES)


def make_catalogue(rng: np.random.Generator, n_products: int) -> Catalogue:
    """``n_products`` products spread over :data:`CATEGORIES`, log-uniform prices within each range."""
    if n_products < len(CATEGORIES):
        raise ValueError(f"n_products must be at least {len(CATEGORIES)}, got {n_products}")
    n_cat = len(CATEGORIES)
    category = np.sort(np.concatenate([np.arange(n_cat), rng.integers(0, n_cat, n_products - n_cat)]))
    low = np.log(np.array([c.min_price for c in CATEGORIES]))[category]
    high = np.log(np.array([c.max_price for c in CATEGORIES]))[category]
    price = np.exp(low + (high - low) * rng.random(n_products))
    # Shelf prices end in .9 or 9 like real price tags.
    list_price_cents = np.where(price < 100, np.round(price) * 100 - 10, np.round(price / 10) * 1000 - 100).astype(
        np.int64
    )
    list_price_cents = np.maximum(list_price_cents, 90)
    margin = np.array([c.margin for c in CATEGORIES])[category] * rng.uniform(0.75, 1.25, n_products)
    unit_cost_cents = np.round(list_price_cents * (1.0 - margin)).astype(np.int64)

    item_count = np.array([len(c.items) for c in CATEGORIES])
    items = np.array([item for c in CATEGORIES for item in c.items], dtype=object)
    item_offset = np.concatenate([[0], np.cumsum(item_count)[:-1]])
    item = item_offset[category] + rng.integers(0, item_count[category])
    brand = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), n_products)]
    variant = np.array(VARIANTS, dtype=object)[rng.integers(0, len(VARIANTS), n_products)]
    name = brand + " " + variant + " " + items[item]

    by_category_price = np.lexsort((list_price_cents, category))
    category_start = np.searchsorted(category[by_category_price], np.arange(n_cat + 1))
    return Catalogue(
        category=category,
        name=name,
        list_price_cents=list_price_cents,
        unit_cost_cents=unit_cost_cents,
        by_category_price=by_category_price,
        category_start=category_start,
    )
