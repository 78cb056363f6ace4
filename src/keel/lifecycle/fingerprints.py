"""Fingerprints of the data a run read: content hash where cheap, else size and time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

#: local files up to this size are hashed; bigger ones are described by size and mtime
HASH_LIMIT = 256 * 1024 * 1024


def fingerprint(source: Any) -> dict[str, Any]:
    """What identifies the data behind ``source`` right now."""
    print_: dict[str, Any] = {"type": source.type, "target": source.target()}
    path_for = getattr(source, "path_for", None)
    if path_for is None:
        return print_  # a query: its text (target) is what names it
    try:
        path = path_for(None)
    except Exception:  # a path with {placeholders}: depends on the call's params
        return print_
    try:
        if "://" not in path:
            stat = os.stat(path)
            print_.update(size=stat.st_size, mtime=stat.st_mtime)
            if stat.st_size <= HASH_LIMIT:
                from keel.hashing import hash_file

                print_["sha256"] = hash_file(path)
        else:
            import fsspec

            fs, target = fsspec.core.url_to_fs(path, **(source.storage_options(path) or {}))
            info = fs.info(target)
            for key in ("size", "ETag", "etag", "mtime", "LastModified", "last_modified"):
                if key in info:
                    print_[key.lower()] = str(info[key]) if key != "size" else info[key]
    except Exception as exc:
        print_["error"] = f"{type(exc).__name__}: {exc}"
    return print_


def fingerprints(sources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: fingerprint(source) for name, source in sorted(sources.items())}
