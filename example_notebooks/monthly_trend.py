# %% [markdown]
# # Monthly revenue trend
#
# Revenue per calendar month from the clean sales data, drawn as a small bar
# chart (hand-built SVG, so no plotting library is needed) and saved as a CSV
# for the report.

# %%
import csv
from collections import defaultdict

from IPython.display import SVG, display

# %% tags=["parameters"]
upstream = ["clean"]
product = None

# %%
# `clean` has several products, so its entry is a dict of key -> path.
with open(upstream["clean"]["data"], newline="") as f:
    sales = list(csv.DictReader(f))

# %%
revenue, units = defaultdict(float), defaultdict(int)
for row in sales:
    month = row["date"][:7]  # ISO dates, so "YYYY-MM" sorts chronologically
    revenue[month] += float(row["revenue"])
    units[month] += int(row["units"])

months = sorted(revenue)
for month in months:
    print(f"{month}  {revenue[month]:>10,.2f}")

# %% [markdown]
# ## Chart

# %%
BAR, GAP, HEIGHT, PAD = 36, 8, 160, 20  # px
peak = max(revenue.values())
width = PAD * 2 + len(months) * (BAR + GAP) - GAP

shapes = []
for i, month in enumerate(months):
    x = PAD + i * (BAR + GAP)
    h = HEIGHT * revenue[month] / peak
    y = PAD + HEIGHT - h
    shapes.append(
        f'<rect x="{x}" y="{y:.1f}" width="{BAR}" height="{h:.1f}" fill="#4c78a8">'
        f"<title>{month}: {revenue[month]:,.2f}</title></rect>"
        f'<text x="{x + BAR / 2}" y="{PAD + HEIGHT + 14}" text-anchor="middle">{month[5:]}</text>'
    )

svg = (
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT + 2 * PAD + 10}" '
    f'font-family="sans-serif" font-size="11">'
    f'<text x="{PAD}" y="{PAD - 6}">Revenue by month (peak {peak:,.0f})</text>'
    f"{''.join(shapes)}</svg>"
)
display(SVG(svg))

# %%
with open(product["data"], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["month", "units", "revenue"])
    for month in months:
        writer.writerow([month, units[month], round(revenue[month], 2)])
