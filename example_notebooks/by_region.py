# %% [markdown]
# # Sales by region
#
# Orders, units and revenue per region from the clean sales data, shown as a
# table (largest region first) and saved as a CSV summary for the report.

# %%
import csv
from collections import defaultdict
from html import escape

from IPython.display import HTML, display

# %% tags=["parameters"]
upstream = ["clean"]
product = None

# %%
# `clean` has several products, so its entry is a dict of key -> path.
with open(upstream["clean"]["data"], newline="") as f:
    sales = list(csv.DictReader(f))

# %%
totals = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": 0.0})
for row in sales:
    t = totals[row["region"]]
    t["orders"] += 1
    t["units"] += int(row["units"])
    t["revenue"] += float(row["revenue"])

grand_total = sum(t["revenue"] for t in totals.values())
summary = [
    {
        "region": region,
        "orders": t["orders"],
        "units": t["units"],
        "revenue": round(t["revenue"], 2),
        "share": round(t["revenue"] / grand_total, 4),
    }
    for region, t in sorted(totals.items(), key=lambda kv: -kv[1]["revenue"])
]

# %%
header = "".join(f"<th>{name}</th>" for name in summary[0])
body = "".join(
    f"<tr><td>{escape(s['region'])}</td><td>{s['orders']}</td><td>{s['units']:,}</td>"
    f"<td>{s['revenue']:,.2f}</td><td>{s['share']:.1%}</td></tr>"
    for s in summary
)
display(HTML(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"))

# %%
with open(product["data"], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(summary[0]))
    writer.writeheader()
    writer.writerows(summary)
