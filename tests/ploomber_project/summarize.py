# %% tags=["parameters"]
upstream = ["report"]
product = None

# %%
from pathlib import Path

rows = Path(upstream["report"]["data"]).read_text().splitlines()
Path(product).write_text(f"{len(rows)} fits")
