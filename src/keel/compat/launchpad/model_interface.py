"""ML Launchpad's model interfaces (``mllaunchpad.model_interface``) and keel's adapter over them.

The classes users subclass (an example is in :mod:`keel.compat.launchpad`); keel finds them
through ``__keel_adapter__`` and wraps the pair in :class:`LaunchpadModel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

from keel.data.helpers import order_columns
from keel.errors import ConfigError
from keel.models.adapter import Adapter
from keel.models.base import ModelContext
from keel.models.report import report

ADAPTER = "keel.compat.launchpad.model_interface:adapt"

__all__ = ["ModelInterface", "ModelMakerInterface", "order_columns", "report"]


class ModelMakerInterface(ABC):
    """Trains (``create_trained_model``) and tests (``test_trained_model``) a model.

    The same instance is used for training and the test that follows it, so training can
    leave information for the test on ``self``.
    """

    __keel_adapter__ = ADAPTER

    @abstractmethod
    def create_trained_model(
        self,
        model_conf: dict[str, Any],
        data_sources: dict[str, Any],
        data_sinks: dict[str, Any],
        old_model: Any = None,
    ) -> Any:
        """Return the trained model (anything ``predict`` needs)."""

    @abstractmethod
    def test_trained_model(
        self,
        model_conf: dict[str, Any],
        data_sources: dict[str, Any],
        data_sinks: dict[str, Any],
        model: Any,
    ) -> dict[str, Any]:
        """Return a dict of metrics."""


class ModelInterface(ABC):
    """Predicts with what ``create_trained_model`` returned (also in ``self.contents``)."""

    __keel_adapter__ = ADAPTER

    def __init__(self, contents: Any = None) -> None:
        self.contents = contents

    @abstractmethod
    def predict(
        self,
        model_conf: dict[str, Any],
        data_sources: dict[str, Any],
        data_sinks: dict[str, Any],
        model: Any,
        args_dict: dict[str, Any],
    ) -> Any:
        """Return the prediction as JSON-like dicts and lists."""


class LaunchpadModel(Adapter):
    """keel's contract over a ModelMakerInterface + ModelInterface pair."""

    style = "launchpad"

    def __init__(self, maker: type[ModelMakerInterface], interface: type[ModelInterface]):
        self.maker = maker
        self.interface = interface

    def _maker(self) -> ModelMakerInterface:
        if getattr(self, "_live_maker", None) is None:
            self._live_maker = self.maker()
        return self._live_maker

    def train(self, ctx: ModelContext) -> Any:
        self._live_maker = self.maker()  # a fresh maker per training, shared with its test
        return self._live_maker.create_trained_model(
            ctx.model_conf, ctx.sources, ctx.sinks, old_model=ctx.previous
        )

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        metrics = self._maker().test_trained_model(ctx.model_conf, ctx.sources, ctx.sinks, fitted)
        return dict(metrics or {})

    def setup(self, ctx: ModelContext) -> None:
        self._live_interface = self.interface(contents=ctx.fitted)

    def teardown(self, ctx: ModelContext) -> None:
        self._live_interface = None

    def predict(self, ctx: ModelContext, fitted: Any, inputs: Any) -> Any:
        interface = getattr(self, "_live_interface", None)
        if interface is None or interface.contents is not fitted:
            interface = self._live_interface = self.interface(contents=fitted)
        return interface.predict(ctx.model_conf, ctx.sources, ctx.sinks, fitted, inputs)


def adapt(module: ModuleType, classes: list[type]) -> LaunchpadModel:
    """keel's model over the ModelMakerInterface and ModelInterface classes of ``module``."""
    makers = [c for c in classes if issubclass(c, ModelMakerInterface)]
    interfaces = [c for c in classes if issubclass(c, ModelInterface)]
    for found, what in ((makers, "ModelMakerInterface"), (interfaces, "ModelInterface")):
        if len(found) > 1:
            names = ", ".join(sorted(c.__name__ for c in found))
            raise ConfigError(
                f"model.module {module.__name__}: several {what} classes ({names}); "
                "keep one per module"
            )
        if not found:
            raise ConfigError(
                f"model.module {module.__name__}: Launchpad-style code needs both a "
                f"ModelMakerInterface and a ModelInterface subclass; no {what} found"
            )
    return LaunchpadModel(makers[0], interfaces[0])
