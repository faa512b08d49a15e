"""Fuse many scenes: manifests (CSV, YAML, folder, STAC) and a Dask runner."""
from .manifest import Scene, read_manifest
from .run import format_report, fuse_batch

__all__ = ["Scene", "read_manifest", "fuse_batch", "format_report"]
