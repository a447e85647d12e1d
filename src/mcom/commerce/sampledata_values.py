"""Word lists and tables of the sample data (pure data; see :mod:`mcom.commerce.sampledata`)."""

from __future__ import annotations

from decimal import Decimal

# code, name, currency, locale, country, tax percent
STORES: list[tuple[str, str, str, str, str, Decimal]] = [
    ("default", "Default Store View", "USD", "en_US", "US", Decimal("8.25")),
    ("eu_de", "Germany Store View", "EUR", "de_DE", "DE", Decimal("19")),
    ("eu_fr", "France Store View", "EUR", "fr_FR", "FR", Decimal("20")),
    ("uk", "United Kingdom Store View", "GBP", "en_GB", "GB", Decimal("20")),
    ("eu_nl", "Netherlands Store View", "EUR", "nl_NL", "NL", Decimal("21")),
    ("eu_es", "Spain Store View", "EUR", "es_ES", "ES", Decimal("21")),
    ("eu_it", "Italy Store View", "EUR", "it_IT", "IT", Decimal("22")),
    ("ca", "Canada Store View", "CAD", "en_CA", "CA", Decimal("13")),
    ("au", "Australia Store View", "AUD", "en_AU", "AU", Decimal("10")),
    ("jp", "Japan Store View", "JPY", "ja_JP", "JP", Decimal("10")),
]

# country → (city, region, postcode) samples
PLACES: dict[str, list[tuple[str, str, str]]] = {
    "US": [("Austin", "Texas", "78701"), ("Portland", "Oregon", "97201"), ("Denver", "Colorado", "80202"),
           ("Boston", "Massachusetts", "02108"), ("Chicago", "Illinois", "60601")],
    "DE": [("Berlin", "Berlin", "10115"), ("München", "Bayern", "80331"), ("Hamburg", "Hamburg", "20095")],
    "FR": [("Paris", "Île-de-France", "75001"), ("Lyon", "Auvergne-Rhône-Alpes", "69001"), ("Lille", "Hauts-de-France", "59000")],
    "GB": [("London", "Greater London", "EC1A 1BB"), ("Leeds", "West Yorkshire", "LS1 1UR"), ("Bristol", "Bristol", "BS1 4DJ")],
    "NL": [("Amsterdam", "Noord-Holland", "1012 JS"), ("Utrecht", "Utrecht", "3511 AA")],
    "ES": [("Madrid", "Madrid", "28001"), ("Valencia", "Valencia", "46001")],
    "IT": [("Milano", "Lombardia", "20121"), ("Roma", "Lazio", "00184")],
    "CA": [("Toronto", "Ontario", "M5H 2N2"), ("Vancouver", "British Columbia", "V6B 1A1")],
    "AU": [("Sydney", "New South Wales", "2000"), ("Melbourne", "Victoria", "3000")],
    "JP": [("Tokyo", "Tokyo", "100-0001"), ("Osaka", "Osaka", "530-0001")],
}
STREETS = ["Main Street", "Oak Avenue", "Market Street", "Station Road", "Park Lane", "High Street", "Elm Street",
           "Harbour Road", "Mill Lane", "Church Street"]
FIRST_NAMES = ["Ava", "Liam", "Noah", "Emma", "Mia", "Lucas", "Sofia", "Leon", "Chloé", "Hugo", "Olivia", "Mateo",
               "Hannah", "Yuki", "Aria", "Finn", "Isla", "Luca", "Zoe", "Elias"]
LAST_NAMES = ["Smith", "Müller", "Martin", "Jones", "García", "Rossi", "de Vries", "Tanaka", "Brown", "Schmidt",
              "Dubois", "Wilson", "Lopez", "Bianchi", "Taylor", "Novak"]

BRANDS = ["Aeron", "Northpeak", "Lumen & Co", "Strider", "Tidewater", "Kestrel", "Oakhaven", "Velo", "Brightfield",
          "Marlowe"]
COLORS = ["Black", "White", "Blue", "Red", "Green", "Grey", "Navy", "Orange", "Purple", "Yellow"]
SIZES = ["XS", "S", "M", "L", "XL"]
MATERIALS = ["Cotton", "Wool", "Linen", "Polyester", "Leather", "Bamboo", "Steel", "Oak", "Ceramic", "Nylon"]
ADJECTIVES = ["Classic", "Urban", "Alpine", "Breeze", "Summit", "Coastal", "Everyday", "Trail", "Studio", "Heritage",
              "Nova", "Drift", "Pulse", "Zen", "Ember"]
# noun, price range, weight range (kg), has sizes
NOUNS: list[tuple[str, tuple[int, int], tuple[float, float], bool]] = [
    ("Tee", (12, 45), (0.15, 0.3), True),
    ("Hoodie", (35, 120), (0.5, 0.9), True),
    ("Jacket", (60, 320), (0.7, 1.8), True),
    ("Running Shoe", (50, 180), (0.5, 1.1), True),
    ("Backpack", (30, 160), (0.6, 1.6), False),
    ("Water Bottle", (8, 40), (0.2, 0.5), False),
    ("Yoga Mat", (20, 90), (0.9, 2.5), False),
    ("Mug", (6, 25), (0.25, 0.45), False),
    ("Desk Lamp", (25, 140), (0.8, 2.2), False),
    ("Watch", (45, 400), (0.1, 0.3), False),
    ("Beanie", (10, 35), (0.08, 0.15), False),
    ("Duffel Bag", (40, 200), (0.8, 1.9), False),
]
VIRTUAL: list[tuple[str, int]] = [("Extended Warranty 2 Years", 29), ("Online Yoga Course", 49),
                                  ("Style Consultation", 75), ("E-Book: Trail Guide", 12)]
GIFT_CARD_AMOUNTS = [25, 50, 100, 200]
PAYMENT_METHODS = ["checkmo", "braintree", "paypal_express", "braintree"]
