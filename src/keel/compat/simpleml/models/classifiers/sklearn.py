"""SimpleML's scikit-learn classifiers: ``Sklearn<Estimator>(name=..., external_model_kwargs=
{...})`` wraps ``sklearn.<module>.<Estimator>``."""

from __future__ import annotations

import importlib
from typing import Any

from keel.compat.simpleml.models.base_sklearn_model import SklearnModel
from keel.compat.simpleml.models.classifiers.classification_mixin import ClassificationMixin

#: SimpleML class name → (scikit-learn module, estimator)
ESTIMATORS: dict[str, tuple[str, str]] = {
    "SklearnDummyClassifier": ("sklearn.dummy", "DummyClassifier"),
    "SklearnAdaBoostClassifier": ("sklearn.ensemble", "AdaBoostClassifier"),
    "SklearnBaggingClassifier": ("sklearn.ensemble", "BaggingClassifier"),
    "SklearnExtraTreesClassifier": ("sklearn.ensemble", "ExtraTreesClassifier"),
    "SklearnGradientBoostingClassifier": ("sklearn.ensemble", "GradientBoostingClassifier"),
    "SklearnHistGradientBoostingClassifier": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "SklearnRandomForestClassifier": ("sklearn.ensemble", "RandomForestClassifier"),
    "SklearnVotingClassifier": ("sklearn.ensemble", "VotingClassifier"),
    "SklearnGaussianProcessClassifier": ("sklearn.gaussian_process", "GaussianProcessClassifier"),
    "SklearnLogisticRegression": ("sklearn.linear_model", "LogisticRegression"),
    "SklearnLogisticRegressionCV": ("sklearn.linear_model", "LogisticRegressionCV"),
    "SklearnPerceptron": ("sklearn.linear_model", "Perceptron"),
    "SklearnRidgeClassifier": ("sklearn.linear_model", "RidgeClassifier"),
    "SklearnRidgeClassifierCV": ("sklearn.linear_model", "RidgeClassifierCV"),
    "SklearnSGDClassifier": ("sklearn.linear_model", "SGDClassifier"),
    "SklearnBayesianGaussianMixture": ("sklearn.mixture", "BayesianGaussianMixture"),
    "SklearnGaussianMixture": ("sklearn.mixture", "GaussianMixture"),
    "SklearnOneVsOneClassifier": ("sklearn.multiclass", "OneVsOneClassifier"),
    "SklearnOneVsRestClassifier": ("sklearn.multiclass", "OneVsRestClassifier"),
    "SklearnOutputCodeClassifier": ("sklearn.multiclass", "OutputCodeClassifier"),
    "SklearnClassifierChain": ("sklearn.multioutput", "ClassifierChain"),
    "SklearnMultiOutputClassifier": ("sklearn.multioutput", "MultiOutputClassifier"),
    "SklearnBernoulliNB": ("sklearn.naive_bayes", "BernoulliNB"),
    "SklearnGaussianNB": ("sklearn.naive_bayes", "GaussianNB"),
    "SklearnMultinomialNB": ("sklearn.naive_bayes", "MultinomialNB"),
    "SklearnKNeighborsClassifier": ("sklearn.neighbors", "KNeighborsClassifier"),
    "SklearnMLPClassifier": ("sklearn.neural_network", "MLPClassifier"),
    "SklearnLinearSVC": ("sklearn.svm", "LinearSVC"),
    "SklearnNuSVC": ("sklearn.svm", "NuSVC"),
    "SklearnSVC": ("sklearn.svm", "SVC"),
    "SklearnDecisionTreeClassifier": ("sklearn.tree", "DecisionTreeClassifier"),
    "SklearnExtraTreeClassifier": ("sklearn.tree", "ExtraTreeClassifier"),
}


class SklearnClassifier(SklearnModel, ClassificationMixin):
    """A scikit-learn classifier; subclasses name it in ``estimator``."""

    estimator: tuple[str, str] = ("", "")

    def _create_external_model(self, **kwargs: Any) -> Any:
        module, name = self.estimator
        return getattr(importlib.import_module(module), name)(**kwargs)


def _define(name: str, estimator: tuple[str, str]) -> type:
    cls = type(
        name,
        (SklearnClassifier,),
        {"estimator": estimator, "__module__": __name__, "__qualname__": name,
         "__doc__": f"``{estimator[0]}.{estimator[1]}``."},
    )  # fmt: skip
    globals()[name] = cls
    return cls


for _name, _estimator in ESTIMATORS.items():
    _define(_name, _estimator)

__all__ = ["ESTIMATORS", "SklearnClassifier", *ESTIMATORS]
