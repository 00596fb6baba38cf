"""Evidently's side of benchmarks/monitoring.py: the same drift tests on the same arrays.

Runs in Evidently's own virtual environment; prints one JSON line with, per feature,
the method Evidently chose (its defaults, as watchkeep's), the statistic and the time
of one Report run (pandas DataFrame of reference and current, 1M rows each).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report, __version__
from evidently.metrics import ValueDrift

folder = Path(sys.argv[1])
out = {"version": __version__, "features": {}}
for name in sys.argv[2:]:
    ref = np.load(folder / f"{name}.ref.npy", allow_pickle=False)
    cur = np.load(folder / f"{name}.cur.npy", allow_pickle=False)
    categorical = ref.dtype.kind in "US"
    definition = (
        DataDefinition(categorical_columns=[name])
        if categorical
        else DataDefinition(numerical_columns=[name])
    )
    started = time.perf_counter()
    reference = Dataset.from_pandas(pd.DataFrame({name: ref}), data_definition=definition)
    current = Dataset.from_pandas(pd.DataFrame({name: cur}), data_definition=definition)
    result = Report([ValueDrift(column=name)]).run(current, reference).dict()
    seconds = time.perf_counter() - started
    metric = result["metrics"][0]
    config = metric.get("config", {})
    value = float(metric["value"])
    method = str(config.get("method") or metric.get("metric_id", ""))
    threshold = config.get("threshold")
    out["features"][name] = {
        "method": method,
        "statistic": value,
        "drifted": bool(threshold is not None and value >= float(threshold)),
        "seconds": seconds,
    }
print(json.dumps(out))
