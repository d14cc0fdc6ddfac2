"""The host's own documents (a plugin config, a ``plugin.yaml``) against their fixed schemas.

A plugin config with a hundred entries cost ~7 ms in jsonschema (and jsonschema's import,
~40 ms, is paid by every process that reads a config); jsonschema-rs gives the same verdict
in microseconds.  The errors stay jsonschema's, word for word, because jsonschema still
writes them: it is imported and run only for a document jsonschema-rs did not pass.  That
also settles every case where the two could disagree in jsonschema-rs's favour:

- jsonschema-rs sees JSON.  It would read ``nan`` as ``null`` and a tuple as an array, and
  cannot take a date, a set or a non-text key at all, where jsonschema judges the Python
  value.  Only a document that is plain JSON (:func:`is_plain_json`, which YAML documents
  almost always are) gets its verdict from jsonschema-rs.
- Its regular expressions are ECMA 262's, where a ``$`` does not match before a final
  newline as Python's does; a document it refuses for that is passed by jsonschema.

So a document jsonschema-rs passes is one jsonschema passes, and a document it refuses is
judged again, and explained, by jsonschema.  Nothing is ever fetched: the schemas here have
no remote references, and the retriever refuses any all the same.

Before either, :mod:`pipeline_ex.schema_quick` gives jsonschema's verdict on the common
documents without importing a schema engine at all (jsonschema-rs's import is ~10 ms of a
cold start that loads plugins); it answers only when it is sure, and a document it finds
invalid is still explained by jsonschema.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipeline_ex import schema_quick
from pipeline_ex.errors import SchemaValidationError

if TYPE_CHECKING:
    import jsonschema_rs

    from pipeline_ex.documents import Document


class DocumentSchema:
    """A fixed Draft 2020-12 schema and the validators that apply it (each built on first
    use and kept for the life of the process).  ``quick=False`` leaves out the
    engine-free verdict (``schema_quick``), which the equivalence tests compare against."""

    def __init__(self, schema: Mapping[str, Any], *, quick: bool = True) -> None:
        self.schema = schema
        self._use_quick = quick

    @cached_property
    def _quick(self) -> schema_quick.Check | None:
        return schema_quick.compile_check(self.schema) if self._use_quick else None

    @cached_property
    def _fast(self) -> jsonschema_rs.Validator:
        from pipeline_ex.schema_rs import compile_validator

        return compile_validator(self.schema)

    def passes(self, data: Any) -> bool:
        """jsonschema's verdict where it is known without running jsonschema: the quick
        one, else jsonschema-rs's when it can be trusted to equal jsonschema's; False
        means "not known to pass", not "invalid"."""
        quick = schema_quick.verdict(self._quick, data)
        if quick is not None:
            return quick
        from pipeline_ex.schema_rs import is_plain_json

        return is_plain_json(data) and self._fast.is_valid(data)

    def check(self, document: Document) -> None:
        """Raise ``SchemaValidationError`` with every problem (file, path, line, message)."""
        if self.passes(document.data):
            return
        from jsonschema import Draft202012Validator

        errors = sorted(
            Draft202012Validator(self.schema).iter_errors(document.data),
            key=lambda e: list(map(str, e.path)),
        )
        if errors:
            raise SchemaValidationError(
                [document.problem(tuple(err.absolute_path), err.message) for err in errors]
            )
