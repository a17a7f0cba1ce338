"""Content: the units a repository holds, declared by plugins without new tables."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from .._exceptions import ContentTypeError

__all__ = ["Content", "content_types"]

_REGISTRY: dict[str, type[Content]] = {}


@attrs.define(eq=False, kw_only=True)
class Content:
    """Base class of every content type. Subclass it (with ``@attrs.define``) to declare one.

    A content type declares, as class variables, its ``type_name`` (unique across
    plugins), ``natural_key_fields`` (the fields that identify a unit everywhere) and
    ``repo_key_fields`` (fields that may be shared by at most one unit per repository
    version; empty for none). Its attrs fields are its data; they are stored as JSON, so
    declaring a type needs no table or migration. Example::

        @attrs.define(eq=False, kw_only=True)
        class FileContent(Content):
            type_name: ClassVar[str] = "file"
            natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "digest")
            repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

            relative_path: str
            digest: str

    A unit is unsaved until the store gives it a primary key (``pk``).

    A ``type_name`` belongs to one class: declaring another class under a name that is
    taken is an error naming both. Declaring the same class again (its module reloaded,
    or a class statement inside a function run twice) replaces the registered class.

    Raises:
        ContentTypeError: at class creation, when ``type_name`` is not a non-empty string,
            when ``natural_key_fields`` is empty, when a key names no field, or when
            another class (another module or qualified name) already declared the
            ``type_name``.
    """

    type_name: ClassVar[str] = ""
    natural_key_fields: ClassVar[tuple[str, ...]] = ()
    repo_key_fields: ClassVar[tuple[str, ...]] = ()

    pk: int | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def __attrs_init_subclass__(cls) -> None:
        # Called by attrs once the subclass's fields exist (attrs >= 24.1), so the
        # key fields can be checked against them here, at declaration time.
        if "type_name" not in cls.__dict__:
            return  # an abstract intermediate base, not a declared type
        name = cls.type_name
        if not isinstance(name, str) or not name:
            raise ContentTypeError(
                f"{cls.__qualname__}.type_name must be a non-empty str, got {name!r}"
            )
        fields = {a.name for a in attrs.fields(cls)} - {"pk"}
        nk = tuple(cls.natural_key_fields)
        if not nk:
            raise ContentTypeError(
                f"content type {name!r} ({cls.__qualname__}) declares no natural_key_fields; "
                "name the fields that identify a unit, "
                "e.g. natural_key_fields = ('relative_path', 'digest')"
            )
        for kind, keys in (
            ("natural_key_fields", nk),
            ("repo_key_fields", tuple(cls.repo_key_fields)),
        ):
            missing = [k for k in keys if k not in fields]
            if missing:
                raise ContentTypeError(
                    f"content type {name!r}: {kind} names {missing!r}, which are not fields of "
                    f"{cls.__qualname__} (fields: {sorted(fields)!r})"
                )
        other = _REGISTRY.get(name)
        if other is not None and not _same_definition(other, cls):
            raise ContentTypeError(
                f"content type name {name!r} is taken by {_dotted(other)}; "
                f"{_dotted(cls)} cannot declare it too. Type names are unique across "
                "plugins: give one of the two classes another type_name (e.g. prefixed "
                "with its plugin's name)"
            )
        _REGISTRY[name] = cls

    @property
    def saved(self) -> bool:
        """True once the store has given this unit a primary key."""
        return self.pk is not None

    def natural_key(self) -> tuple[Any, ...]:
        """The values of ``natural_key_fields``, in order."""
        fields = tuple(self.natural_key_fields)  # a plugin may have declared a list
        get = _KEY_GETTERS.get(fields) or _key_getter(fields)
        return get(self)

    def repo_key(self) -> tuple[Any, ...]:
        """The values of ``repo_key_fields``, in order (empty when the type has none)."""
        fields = tuple(self.repo_key_fields)  # a plugin may have declared a list
        get = _KEY_GETTERS.get(fields) or _key_getter(fields)
        return get(self)

    def data(self) -> dict[str, Any]:
        """The unit's fields (without ``pk``) as a JSON-ready dict."""
        names, get = data_fields(type(self))
        return dict(zip(names, get(self), strict=True))


#: Per content class: its field names but ``pk``, in declaration order, and a function
#: returning their values as a tuple, in that order (see :func:`data_fields`).
_DATA_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def data_fields(cls: type[Content]) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The names of a content class's fields but ``pk``, in declaration order, and a
    function giving a unit's values of them as a tuple in that order.

    What :meth:`Content.data` is made of, computed once per class: the store encodes the
    fields of every unit it saves.
    """
    found = _DATA_FIELDS.get(cls)
    if found is None:
        names = tuple(a.name for a in attrs.fields(cls) if a.name != "pk")
        found = _DATA_FIELDS[cls] = (names, _values_getter(names))
    return found


def _values_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function returning the tuple of the named attributes' values (in C, mostly)."""
    if len(names) > 1:
        get: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*names)
        return get
    if names:
        # attrgetter of one name returns the value itself, not a 1-tuple.
        one = operator.attrgetter(names[0])
        return lambda unit: (one(unit),)
    return lambda _unit: ()


#: A function returning the tuple of the named attributes' values, per tuple of field
#: names (one per declared key): a sync reads each unit's keys several times, and
#: ``operator.attrgetter`` does it in C, three times faster than a generator expression.
_KEY_GETTERS: dict[tuple[str, ...], Callable[[Any], tuple[Any, ...]]] = {}


def _key_getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    get = _KEY_GETTERS[fields] = _values_getter(fields)
    return get


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _same_definition(registered: type, new: type) -> bool:
    """True when ``new`` is ``registered`` defined again, not another class.

    The same module and qualified name is the same class statement run again: a module
    reloaded (``importlib.reload``), or a class declared inside a function that runs more
    than once (a test). The newer class then replaces the older one. Any other class is a
    second claim on the type name.
    """
    return registered.__module__ == new.__module__ and registered.__qualname__ == new.__qualname__


def content_types() -> dict[str, type[Content]]:
    """Every declared content type, by ``type_name``."""
    return dict(_REGISTRY)


def content_type_named(name: str) -> type[Content] | None:
    """The declared content type whose ``type_name`` is ``name``, or None.

    Like ``content_types().get(name)`` without copying the registry: the store asks it for
    every unit it encodes or decodes.
    """
    return _REGISTRY.get(name)
