"""``mlopus.mlflow.api.entity``: an entity record bound to the API that fetched it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr

from keel.compat.mlopus.mlflow.api.common import schema

if TYPE_CHECKING:
    from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi


class EntityApi(schema.BaseEntity):
    """A record with its API handle (``using(api)``); ``update()`` reads it again."""

    _api: Any = PrivateAttr(default=None)

    @property
    def api(self) -> BaseMlflowApi:
        return self._api

    def using(self, api: BaseMlflowApi) -> EntityApi:
        """Switch the API handle."""
        self._api = api
        return self

    def update(self) -> EntityApi:
        """Read this entity again and update it in place."""
        return self._use_values_from(self._get_latest_data())

    def _use_values_from(self, other: schema.BaseEntity) -> Any:
        for key, value in other.items():
            setattr(self, key, value)
        return self

    def _get_latest_data(self) -> schema.BaseEntity:
        raise NotImplementedError
