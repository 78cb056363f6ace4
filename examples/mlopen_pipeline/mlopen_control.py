"""An mlopen control file: only the io_handler import names keel."""

import os

import pandas as pd
import plotly.graph_objects as go
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keel.compat.mlopen.utils import io_handler as io  # was: from mlopenapp.utils import io_handler

FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]


def get_params(run=False):
    if run:
        return []
    return [{"name": "C", "type": "number", "default": 1.0, "label": "Regularisation"}]


def train(inpt, params=None):
    df = pd.read_csv(inpt)
    c = (params or {}).get("C", 1.0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    model.fit(df[FEATURES], df["species"])
    io.save_pipeline(
        [model], [(sorted(df["species"].unique()), "classes")], os.path.basename(__file__)
    )


def _frame(data):
    if isinstance(data, str | os.PathLike):  # a file: the input keel hands over, or a path
        return pd.read_csv(data)
    return pd.DataFrame([data] if isinstance(data, dict) else data)


def test(inpt, model, args, params=None):  # keel's optional addition: metrics
    df = pd.read_csv(inpt)
    return {"accuracy": float(model.score(df[FEATURES], df["species"]))}


def run_pipeline(input, model, args, params=None):
    df = _frame(input)
    predicted = model.predict(df[FEATURES].astype(float))
    fig = go.Figure(
        go.Scatter(
            x=df["petal_length"].tolist(),
            y=df["petal_width"].tolist(),
            mode="markers",
            text=list(predicted),
            marker={"color": [args["classes"].index(p) for p in predicted]},
        )
    )
    fig.update_layout(
        title="Predicted species", xaxis_title="petal length", yaxis_title="petal width"
    )
    rows = [[*df.loc[i, FEATURES].tolist(), p] for i, p in zip(df.index, predicted, strict=True)]
    return {
        "data": rows,
        "columns": [*FEATURES, "prediction"],
        "graphs": [fig],
        "text": f"Predicted {len(rows)} flowers",
    }
