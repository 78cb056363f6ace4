# -*- coding: utf-8 -*-

"""A small script for creating a Boston-like house price training set.

scikit-learn no longer ships the Boston data (``load_boston`` was removed in 1.2), so this
writes synthetic rows with its columns: the same shape, made up values, always the same.
"""

import numpy
import pandas

FEATURES = [
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
]


def write_boston_csv(csv_name, rows=200):
    """Write a Boston-like house price training dataset."""
    rng = numpy.random.default_rng(506)
    df = pandas.DataFrame(rng.uniform(0, 1, (rows, len(FEATURES))), columns=FEATURES)
    df["CHAS"] = (df["CHAS"] > 0.9).astype(float)
    df["RM"] = 4 + 4 * df["RM"]
    df["LSTAT"] = 2 + 35 * df["LSTAT"]
    noise = rng.normal(0, 1.5, rows)
    df["target"] = (
        9 * df["RM"] - 0.6 * df["LSTAT"] - 8 * df["CRIM"] + 3 * df["CHAS"] - 10 + noise
    ).round(2)
    df.to_csv(csv_name, index=False)


if __name__ == "__main__":
    write_boston_csv("house-prices.csv")
