"""``mlopus.mlflow.api.common.transfer``: the listing records and the file transfer settings.

keel moves the bytes itself (its artifact stores), so :class:`FileTransfer` keeps only what
changes keel's behaviour, ``prog_bar`` (a progress bar on stderr while files move), and
accepts mlopus' rclone settings (``use_scheme``, ``map_scheme``, ``tool``, ``extra_args``)
so configurations load unchanged; those have no effect on keel.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator


class ObjMeta(BaseModel):
    """One entry of an artifact listing (rclone's ``lsjson`` fields, as in mlopus)."""

    Name: str
    Size: int
    IsDir: bool
    MimeType: str
    ModTime: datetime


LsResult = list[ObjMeta] | ObjMeta


class FileTransfer(BaseModel):
    """How artifact files are moved: keel's stores, with a progress bar when ``prog_bar``."""

    prog_bar: bool = Field(default=True, description="Show a progress bar while files move.")
    tool: Any = Field(
        default="rclone_python.rclone", description="Accepted; keel's stores move files."
    )
    extra_args: dict[str, list[str]] = Field(default={"sync": ["--copy-links"]})
    use_scheme: str | None = Field(default=None, description="Accepted; no effect on keel.")
    map_scheme: dict[Any, str] | None = Field(default=None, description="Accepted; no effect.")

    @field_validator("map_scheme")
    @classmethod
    def _compile(cls, value: dict[Any, str] | None) -> dict[Any, str] | None:
        if value is None:
            return None
        return {re.compile(k) if isinstance(k, str) else k: v for k, v in value.items()}

    @model_validator(mode="after")
    def _one_scheme_rule(self) -> FileTransfer:
        if self.use_scheme and self.map_scheme:
            raise ValueError("`use_scheme` and `map_scheme` are incompatible")
        return self

    def _translate_scheme(self, url: str) -> str:
        """The URL with its scheme replaced as mlopus would before calling rclone."""
        text = str(url)
        if "://" not in text or text.startswith("file://"):
            return text
        scheme = self.use_scheme
        for pattern, new in (self.map_scheme or {}).items():
            if pattern.match(text):
                scheme = new
                break
        return f"{scheme}://{text.split('://', 1)[1]}" if scheme else text
