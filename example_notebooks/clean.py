# %% [markdown]
# # Clean the raw sales export
#
# The raw export from `make_raw_data` has the usual problems: region names
# with stray whitespace or the wrong case, rows with no `units`, rows with a
# negative `unit_price`, and exact duplicate rows. This notebook
#
# 1. normalises region names (fixable, so those rows are kept),
# 2. drops rows with missing units or a negative price,
# 3. drops exact duplicates (compared *after* normalisation),
#
# and writes a clean CSV with a `revenue` column for the downstream summaries.

# %%
import csv
from collections import Counter

from IPython.display import Markdown, display

# %% tags=["parameters"]
upstream = ["make_raw_data"]
product = None

# %%
with open(upstream["make_raw_data"], newline="") as f:
    raw_rows = list(csv.DictReader(f))

print(f"{len(raw_rows)} raw rows")

# %% [markdown]
# ## Fix and filter
#
# Each row is either kept (possibly after fixing its region) or dropped with
# a single reason, so the counts below add up to the number of raw rows.

# %%
kept, seen = [], set()
dropped = Counter()
regions_fixed = 0

for row in raw_rows:
    region = row["region"].strip().title()

    if not row["units"].strip():
        dropped["missing units"] += 1
        continue
    units, price = int(row["units"]), float(row["unit_price"])
    if price < 0:
        dropped["negative unit price"] += 1
        continue

    clean_row = (row["date"], region, row["product"], units, price)
    if clean_row in seen:
        dropped["duplicate row"] += 1
        continue
    seen.add(clean_row)
    kept.append(clean_row)
    regions_fixed += region != row["region"]

assert len(kept) + sum(dropped.values()) == len(raw_rows)

# %%
lines = [
    "| outcome | rows |",
    "|---|---:|",
    f"| kept | {len(kept)} |",
    f"| &nbsp;&nbsp;of which region fixed | {regions_fixed} |",
]
lines += [f"| dropped: {reason} | {n} |" for reason, n in dropped.most_common()]
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Write the clean data

# %%
with open(product["data"], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["date", "region", "product", "units", "unit_price", "revenue"])
    for day, region, item, units, price in kept:
        writer.writerow([day, region, item, units, price, round(units * price, 2)])

print(f"wrote {len(kept)} rows")
