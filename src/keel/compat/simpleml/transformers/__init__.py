"""SimpleML's transformers: the base classes and the ones its README's pipeline uses
(``FillWithValue``, ``DataframeToRecords``, ``SklearnDictVectorizer``)."""

from keel.compat.simpleml.transformers.base_transformer import Transformer, TransformerMixin
from keel.compat.simpleml.transformers.fitful_transformers import SklearnDictVectorizer
from keel.compat.simpleml.transformers.fitless_transformers import (
    DataframeToRecords,
    DropColumns,
    FillWithValue,
    IdentityTransformer,
    KeepColumns,
)

__all__ = [
    "DataframeToRecords",
    "DropColumns",
    "FillWithValue",
    "IdentityTransformer",
    "KeepColumns",
    "SklearnDictVectorizer",
    "Transformer",
    "TransformerMixin",
]
