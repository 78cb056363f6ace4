"""Classifiers: ``predict_proba`` besides ``predict``; scikit-learn's in ``.sklearn``."""

from keel.compat.simpleml.models.classifiers.classification_mixin import ClassificationMixin

__all__ = ["ClassificationMixin"]
