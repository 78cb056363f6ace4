"""Writes titanic.csv: 100 Titanic-style passengers from a fixed seed (survival depends on
sex, class and age, so a model learns something). Run again to get the same bytes."""

import csv
import random
from pathlib import Path

rng = random.Random(18)
rows = []
for passenger in range(1, 101):
    pclass = rng.choice([1, 2, 3, 3])
    sex = rng.choice(["male", "female"])
    age = None if rng.random() < 0.15 else round(rng.uniform(1, 70))
    sibsp, parch = rng.choice([0, 0, 0, 1, 2]), rng.choice([0, 0, 1, 2])
    fare = round({1: 80.0, 2: 25.0, 3: 9.0}[pclass] * rng.uniform(0.6, 1.6), 2)
    embarked = rng.choice(["S", "S", "S", "C", "Q"])
    chance = 0.75 if sex == "female" else 0.2
    chance += {1: 0.15, 2: 0.0, 3: -0.1}[pclass] + (0.15 if age is not None and age < 12 else 0.0)
    survived = int(rng.random() < chance)
    rows.append(
        [passenger, survived, pclass, sex, "" if age is None else age, sibsp, parch, fare, embarked]
    )

with (Path(__file__).parent / "titanic.csv").open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(
        ["PassengerId", "Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    )
    writer.writerows(rows)
