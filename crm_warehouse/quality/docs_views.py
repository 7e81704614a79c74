"""GX's Data Docs views with their Jinja templates compiled once per process.

Each Data Docs build makes new view objects, and each view a new Jinja environment
that compiles GX's templates again: about 50 templates per page, most of a suite's
Data Docs time (0.8 s of the 2 s a suite took on the test warehouse). These views
share one in-memory bytecode cache, so a template is compiled by the first build of
the process and loaded from its compiled code afterwards. Jinja checks the template's
source against the cached entry, so the pages are the same as GX's own views make.
"""

from __future__ import annotations

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class _InMemoryBytecodeCache(BytecodeCache):
    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _InMemoryBytecodeCache()


class CachedJinjaPageView(DefaultJinjaPageView):
    """GX's page view (suite and validation pages), templates compiled once per process."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED_TEMPLATES


class CachedJinjaIndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, templates compiled once per process."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED_TEMPLATES


def view_config(view: type) -> dict[str, str]:
    """The ``view`` entry of a GX site builder section for ``view``."""
    return {"module_name": view.__module__, "class_name": view.__name__}
