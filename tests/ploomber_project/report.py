# %% tags=["parameters"]
upstream = ["fit-*"]
product = None

# %%
from pathlib import Path

fits = upstream["fit-*"]
lines = [f"{name} {Path(fits[name]['score']).read_text()}" for name in sorted(fits)]
Path(product["data"]).write_text("\n".join(lines))
