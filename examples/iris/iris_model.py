"""An iris classifier written to keel's model contract."""

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

import keel

FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]


class IrisModel(keel.Model):
    def train(self, ctx):
        df = ctx.sources["iris_train"].get_dataframe()
        ctx.report("train_data", df)  # summarised: shape, columns, dtypes, describe
        return LogisticRegression(**ctx.params).fit(df[FEATURES], df["species"])

    def evaluate(self, ctx, fitted):
        df = ctx.sources["iris_test"].get_dataframe()
        predicted = fitted.predict(df[FEATURES])
        return {
            "accuracy": float((predicted == df["species"]).mean()),
            "f1_macro": float(f1_score(df["species"], predicted, average="macro")),
        }

    def predict(self, ctx, fitted, inputs):
        rows = inputs if isinstance(inputs, list) else [inputs]
        results = self.predict_batch(ctx, fitted, pd.DataFrame(rows))
        return results if isinstance(inputs, list) else results[0]

    def predict_batch(self, ctx, fitted, batch):
        # one answer per row, the same as predict gives: species and probabilities
        frame = batch if isinstance(batch, pd.DataFrame) else pd.DataFrame(batch)
        probabilities = fitted.predict_proba(frame[FEATURES].astype(float))
        return [
            {
                "species": str(fitted.classes_[p.argmax()]),
                "probabilities": {
                    str(c): round(float(v), 4) for c, v in zip(fitted.classes_, p, strict=True)
                },
            }
            for p in probabilities
        ]

    def generate_dataset(self, ctx):
        df = ctx.sources["iris_raw"].get_dataframe().dropna()
        df.to_parquet(ctx.dataset_dir / "iris.parquet", index=False)
