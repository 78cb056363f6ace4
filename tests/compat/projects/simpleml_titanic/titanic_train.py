# SimpleML's README "Usage" section, run on keel: only the `simpleml` prefix of the imports
# changed (to `keel.compat.simpleml`), and the filepath names this project's CSV.
from keel.compat.simpleml.utils import Database

# Initialize Database Connection and upgrade the schema to the latest
db = Database().initialize(upgrade=True)

from keel.compat.simpleml.constants import TEST_SPLIT
from keel.compat.simpleml.datasets.pandas import PandasFileBasedDataset
from keel.compat.simpleml.metrics import AccuracyMetric
from keel.compat.simpleml.models import SklearnLogisticRegression
from keel.compat.simpleml.pipelines.sklearn import RandomSplitSklearnPipeline
from keel.compat.simpleml.transformers import (
    DataframeToRecords,
    FillWithValue,
    SklearnDictVectorizer,
)

# Create Dataset and save it
dataset = PandasFileBasedDataset(
    name="titanic",
    filepath="titanic.csv",
    format="csv",
    label_columns=["Survived"],
    squeeze_return=True,
)
dataset.build_dataframe()
dataset.save()  # this defaults to a pickle serialization

# Define the minimal transformers to fill nulls and one-hot encode text columns
transformers = [
    ("fill_zeros", FillWithValue(values=0.0)),
    ("record_coverter", DataframeToRecords()),
    ("vectorizer", SklearnDictVectorizer()),
]

# Create Pipeline and save it - Use basic 80-20 test split
pipeline = RandomSplitSklearnPipeline(
    name="titanic",
    transformers=transformers,
    train_size=0.8,
    validation_size=0.0,
    test_size=0.2,
)
pipeline.add_dataset(dataset)  # adds a lineage relationship
pipeline.fit()  # automatically uses relationship and parameters to choose data
pipeline.save()  # this defaults to a pickle serialization

# Create Model and save it -- Creates an sklearn.linear_model.LogisticRegression artifact
model = SklearnLogisticRegression(name="titanic")
model.add_pipeline(pipeline)  # adds a lineage relationship
model.fit()  # automatically uses relationship to choose data
model.save()  # this defaults to a pickle serialization

# Create Metric and save it
metric = AccuracyMetric(dataset_split=TEST_SPLIT)
metric.add_model(model)
metric.add_dataset(dataset)
metric.score()
metric.save()

# (not in the README: what the test checks afterwards)
import json

print(
    json.dumps(
        {
            "dataset": [str(dataset.id), dataset.version, dataset.hash_],
            "pipeline": [str(pipeline.id), pipeline.version, pipeline.hash_],
            "model": [str(model.id), model.version, model.hash_],
            "metric": [str(metric.id), metric.version, metric.name, metric.values],
        }
    )
)
