# %% tags=["parameters"]
upstream = ["get_data"]
product = None
model = None
alpha = 0

# %%
import pickle
from pathlib import Path

data = pickle.loads(Path(upstream["get_data"]).read_bytes())
Path(product["score"]).write_text(f"{model}:{alpha}:{sum(data)}")
