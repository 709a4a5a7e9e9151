"""Python-callable tasks for the example sales pipeline.

``make_raw_data`` is the root of the DAG: it fakes an export from a sales
system, warts included, so that the ``clean`` notebook has something to do.
"""

import csv
import random
from datetime import date, timedelta

REGIONS = ["North", "South", "East", "West"]
# product name -> list price; sold prices jitter around it
CATALOG = {"Widget": 4.50, "Gadget": 12.00, "Gizmo": 27.50, "Doohickey": 8.25}
FIELDS = ["date", "region", "product", "units", "unit_price"]
START = date(2023, 1, 1)


def make_raw_data(product, n_rows=400, seed=7):
    """Write a synthetic, slightly dirty sales CSV to ``product``.

    One row per sale over calendar year 2023. Volume grows through the year
    and the regions differ in size, so the downstream summaries have a story
    to tell. A few of the ``n_rows`` rows are deliberately broken the way
    real exports are, and a few duplicates are appended:

    * region names with stray whitespace or the wrong case (fixable),
    * blank ``units`` (dropped),
    * negative ``unit_price`` (dropped),
    * exact duplicate rows (deduplicated).

    Output is fully determined by ``n_rows`` and ``seed``.
    """
    rng = random.Random(seed)
    region_weights = [4, 2, 3, 1]

    rows = []
    for _ in range(n_rows):
        # Half the days are drawn as the max of two uniform draws, which has a
        # rising density: the mix gives a steady (roughly 3x) upward trend.
        day = rng.randrange(365)
        if rng.random() < 0.5:
            day = max(day, rng.randrange(365))
        item = rng.choice(list(CATALOG))
        rows.append(
            {
                "date": (START + timedelta(days=day)).isoformat(),
                "region": rng.choices(REGIONS, weights=region_weights)[0],
                "product": item,
                "units": rng.randint(1, 20),
                "unit_price": round(CATALOG[item] * rng.uniform(0.9, 1.1), 2),
            }
        )

    # Dirty the data. Pick distinct victims so each problem is counted once;
    # with fewer than 30 rows the later problems simply get fewer victims.
    victims = rng.sample(range(len(rows)), min(30, len(rows)))
    for i in victims[:12]:
        rows[i]["region"] = rng.choice(["  {}", "{} ", "{}"]).format(
            rng.choice([str.upper, str.lower])(rows[i]["region"])
        )
    for i in victims[12:18]:
        rows[i]["units"] = ""
    for i in victims[18:22]:
        rows[i]["unit_price"] = -rows[i]["unit_price"]
    # Duplicates are appended copies of otherwise clean rows.
    rows.extend(dict(rows[i]) for i in victims[22:30])

    rows.sort(key=lambda r: r["date"])
    with open(product, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
