"""HTML built so that nothing a plugin reports can become markup.

Plugin names, versions, error messages and health messages are plugin-controlled text.
Instead of remembering to escape each one, pages are built from :func:`element`, which
escapes every child and attribute value that is not already :class:`Markup` (the output of
``element`` itself).  Forgetting to escape is then impossible: the only way to emit raw
markup is to construct ``Markup`` explicitly, which this package does for constant
strings only.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


class Markup(str):
    """Text that is already HTML (escaped, or a constant of ours)."""

    __slots__ = ()


Child = str | int | float | None | Markup | Iterable["Child"]


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def _children(child: Child) -> Iterable[Markup]:
    if child is None:
        return
    if isinstance(child, str | int | float):  # Markup is a str: escape() passes it through
        yield escape(child)
        return
    for item in child:
        yield from _children(item)


def element(tag: str, *children: Child, **attributes: str | int | float | bool | None) -> Markup:
    """``<tag attr="...">children</tag>``; ``class_`` names the class attribute, ``None`` or
    ``False`` leaves an attribute out, ``True`` writes it bare, ``data_x`` becomes
    ``data-x``."""
    parts = [tag]
    for key, value in attributes.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{escape(value)}"')
    inner = "".join(_children(children))
    return Markup(f"<{' '.join(parts)}>{inner}</{tag}>")


def void(tag: str, **attributes: str | int | float | bool | None) -> Markup:
    """An element without content or end tag (``meta``, ``br``)."""
    return Markup(element(tag, **attributes)[: -len(f"</{tag}>")])
