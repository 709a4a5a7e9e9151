# %% [markdown]
# # Sales report
#
# A short narrative summary built from the two summaries upstream: the
# per-region totals (`by_region`) and the monthly revenue (`monthly_trend`).
# It picks out the top region, the best month and how revenue grew over the
# period.

# %%
import csv

from IPython.display import Markdown, display

# %% tags=["parameters"]
upstream = ["by_region", "monthly_trend"]
product = None

# %%
with open(upstream["by_region"]["data"], newline="") as f:
    regions = list(csv.DictReader(f))
with open(upstream["monthly_trend"]["data"], newline="") as f:
    monthly = list(csv.DictReader(f))

for row in regions + monthly:
    row["revenue"] = float(row["revenue"])

# %%
total = sum(r["revenue"] for r in regions)
top = max(regions, key=lambda r: r["revenue"])
bottom = min(regions, key=lambda r: r["revenue"])
best = max(monthly, key=lambda m: m["revenue"])
first, last = monthly[0], monthly[-1]

# Halves of the period, robust to one unusually good or bad month.
half = len(monthly) // 2
early = sum(m["revenue"] for m in monthly[:half])
late = sum(m["revenue"] for m in monthly[-half:])


def pct(new, old):
    return f"{(new - old) / old:+.0%}" if old else "n/a"


# %%
display(
    Markdown(
        f"""
## Summary, {first["month"]} to {last["month"]}

Total revenue was **{total:,.2f}** across {len(regions)} regions.

* **Top region:** {top["region"]} with {top["revenue"]:,.2f}
  ({float(top["share"]):.0%} of revenue); the smallest was {bottom["region"]}
  ({float(bottom["share"]):.0%}).
* **Best month:** {best["month"]} with {best["revenue"]:,.2f}.
* **Growth:** monthly revenue went from {first["revenue"]:,.2f} in {first["month"]}
  to {last["revenue"]:,.2f} in {last["month"]} ({pct(last["revenue"], first["revenue"])});
  the last {half} months brought in {pct(late, early)} versus the first {half}.
"""
    )
)
