"""How content units become rows and back: canonical JSON and key digests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Final

from .._exceptions import ContentTypeError, StoreArgumentError
from ..models import Content, content_type_named, data_fields
from ._values import NAME_MAX_CHARS, check_text

__all__ = [
    "ContentRow",
    "check_declared",
    "decode_content",
    "encode_content",
    "key_digest",
    "repo_key_of",
]

# (type_name, natural_key_json, natural_key_digest, repo_key_digest or None, data_json)
ContentRow = tuple[str, str, str, str | None, str]


# sort_keys and fixed separators: equal values always give equal text, so the text (and
# its digest) can serve as a unique key across processes and machines. One shared encoder
# instead of json.dumps: this runs several times per unit on the hot path.
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# Keys refuse NaN and infinity: NaN != NaN, so a key holding one could never be found
# again by value, and neither has a JSON form.
_key_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode

# What the encoder writes for each scalar it meets (with ensure_ascii=False, strings go
# through json's encode_basestring; ints through int.__repr__), for _canonical's fast path.
_encode_str = json.encoder.encode_basestring
_SCALARS: dict[type, Any] = {
    str: _encode_str,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "null",
}


def _canonical(value: Any, encoder: Callable[[Any], str] = _encoder) -> str:
    """The canonical JSON text of ``value``: exactly what ``encoder`` writes.

    Keys and content fields are mostly flat lists and dicts of strings and ints, and the
    encoder's own set-up costs more than encoding them: those are written here (three
    times faster, and this runs several times per unit of every sync); anything else
    (floats, nesting, other types) goes to the encoder.
    """
    kind = type(value)
    if kind is list or kind is tuple:
        parts = []
        for item in value:
            write = _SCALARS.get(type(item))
            if write is None:
                return encoder(value)
            parts.append(write(item))
        return "[" + ",".join(parts) + "]"
    if kind is dict and all(type(key) is str for key in value):
        pairs = []
        for key in sorted(value):
            write = _SCALARS.get(type(value[key]))
            if write is None:
                return encoder(value)
            pairs.append(_encode_str(key) + ":" + write(value[key]))
        return "{" + ",".join(pairs) + "}"
    return encoder(value)


#: Per content class: the JSON key prefixes (``"name":``) of its data fields in sorted
#: order, the position of each in the tuple ``get(unit)`` returns, and that ``get`` (the
#: models' own, :func:`~stageline.models.data_fields`); None for a class that overrides
#: ``data()`` (its dict is encoded as it comes).
_DataPlan = tuple[tuple[str, ...], tuple[int, ...], Callable[[Any], tuple[Any, ...]]]
_DATA_PLANS: dict[type, _DataPlan | None] = {}


def _data_plan(cls: type[Content]) -> _DataPlan | None:
    plan: _DataPlan | None = None
    if cls.data is Content.data:
        names, get = data_fields(cls)
        order = tuple(sorted(range(len(names)), key=names.__getitem__))
        plan = (tuple(_encode_str(names[i]) + ":" for i in order), order, get)
    _DATA_PLANS[cls] = plan
    return plan


def _data_json(unit: Content) -> str:
    """``_canonical(unit.data())``, without building the dict or sorting its keys per unit."""
    cls = type(unit)
    plan = _DATA_PLANS[cls] if cls in _DATA_PLANS else _data_plan(cls)
    if plan is None:
        return _canonical(unit.data())
    prefixes, order, get = plan
    values = get(unit)
    parts = []
    for prefix, position in zip(prefixes, order, strict=True):
        value = values[position]
        write = _SCALARS.get(type(value))
        if write is None:
            return _canonical(unit.data())
        parts.append(prefix + write(value))
    return "{" + ",".join(parts) + "}"


def _canonical_key(value: Any) -> str:
    """Like ``_canonical``, but NaN and infinity are refused (``ValueError``)."""
    return _canonical(value, _key_encoder)


_NOT_UNICODE = (
    "text must be valid Unicode (a lone surrogate, as os.fsdecode makes of a file name "
    "that is not UTF-8, cannot be stored; decode such names explicitly)"
)


def _digest(type_name: str, key_json: str) -> str:
    text = type_name + "\x00" + key_json
    try:
        encoded = text.encode()
    except UnicodeEncodeError as exc:
        raise ContentTypeError(
            f"content of type {type_name!r} with key {key_json} cannot be stored: "
            f"{_NOT_UNICODE}: {exc}"
        ) from exc
    return hashlib.blake2b(encoded, digest_size=_DIGEST_BYTES).hexdigest()


def _key_json(type_name: str, values: tuple[Any, ...]) -> str:
    try:
        return _canonical_key(list(values))
    except ValueError as exc:
        # Raises again, as it should, unless the only trouble was NaN or infinity.
        _canonical(list(values))
        raise StoreArgumentError(
            f"content of type {type_name!r} with key {values!r} cannot be stored: a key "
            "field holds NaN or infinity, and NaN equals nothing, not even itself, so the "
            "unit could never be found again by its key; use None or a string instead"
        ) from exc


#: Keys met lately: type name -> key values -> key digest + canonical key JSON (one
#: string). A sync needs the same keys several times (looked up, saved, added to the
#: version), each in another stage; the JSON and digest are a pure function of the type
#: name and values, so they are computed once. Only keys made of exact str and int values
#: are kept: they are immutable, and equal tuples of them always have equal JSON (1 ==
#: 1.0 == True, but their JSON differs). Two generations bound the memory: when the newer
#: one holds _KEY_MEMO_SIZE keys it becomes the older one (the oldest is dropped), so the
#: last _KEY_MEMO_SIZE to 2 * _KEY_MEMO_SIZE keys are kept, more than a sync has between
#: its stages (the buffers and pending batches hold ~2 000 units, two keys each) and at
#: most ~3 MiB. Each key keeps one object the garbage collector counts, its values tuple
#: (strings are not counted): a (type, values) key and a (JSON, digest) tuple per key,
#: as before, set off a collection of the youngest objects every ~100 units of a sync.
_KEY_MEMO_SIZE: Final = 4096
_DIGEST_BYTES: Final = 20  # blake2b's digest_size
_DIGEST_CHARS: Final = 2 * _DIGEST_BYTES  # in hex
_key_memo: dict[str, dict[tuple[Any, ...], str]] = {}
_older_key_memo: dict[str, dict[tuple[Any, ...], str]] = {}
_key_memo_count = 0


def _packed_key(type_name: str, values: tuple[Any, ...]) -> str:
    """The key's digest followed by its canonical JSON (see :func:`key_digest`)."""
    global _key_memo, _older_key_memo, _key_memo_count
    for value in values:
        kind = type(value)
        if kind is not str and kind is not int:
            key_json, digest = _compute_key(type_name, values)
            return digest + key_json
    memo = _key_memo.get(type_name)
    packed = None if memo is None else memo.get(values)
    if packed is None:
        older = _older_key_memo.get(type_name)
        packed = None if older is None else older.get(values)
        if packed is None:
            # What _compute_key gives for exact str and int values, written out: a miss
            # is the usual case of a re-sync's lookup, and the general path's layers cost
            # more than the JSON and the digest themselves.
            key_json = (
                "["
                + ",".join([_encode_str(v) if type(v) is str else int.__repr__(v) for v in values])
                + "]"
            )
            packed = _digest(type_name, key_json) + key_json
            if _key_memo_count >= _KEY_MEMO_SIZE:
                _older_key_memo, _key_memo, _key_memo_count = _key_memo, {}, 0
                memo = None
            if memo is None:
                memo = _key_memo[type_name] = {}
            memo[values] = packed
            _key_memo_count += 1
    return packed


def _key_json_and_digest(type_name: str, values: tuple[Any, ...]) -> tuple[str, str]:
    """The canonical JSON of a key and its digest (see :func:`key_digest`)."""
    packed = _packed_key(type_name, values)
    return packed[_DIGEST_CHARS:], packed[:_DIGEST_CHARS]


def _compute_key(type_name: str, values: tuple[Any, ...]) -> tuple[str, str]:
    try:
        key_json = _key_json(type_name, values)
    except StoreArgumentError:
        raise
    except (TypeError, ValueError) as exc:
        raise ContentTypeError(
            f"content of type {type_name!r} with key {values!r} cannot be stored: its key "
            f"fields must be JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from exc
    return key_json, _digest(type_name, key_json)


def key_digest(type_name: str, values: tuple[Any, ...]) -> str:
    """A fixed-size digest of a (type, key values) pair, used as an indexed unique key.

    Digests rather than the JSON itself keep index entries small whatever the key's size
    (PostgreSQL refuses btree entries above about 2.7 kB).

    Raises:
        StoreArgumentError: a key value is NaN or infinity.
        ContentTypeError: a key value is not a JSON value, or not valid Unicode.
    """
    return _packed_key(type_name, values)[:_DIGEST_CHARS]


def check_declared(unit: Content) -> str:
    cls = type(unit)
    name = cls.type_name
    if not name or content_type_named(name) is not cls:
        raise ContentTypeError(
            f"{cls.__module__}.{cls.__qualname__} is not a declared content type; subclass "
            "Content with a type_name and natural_key_fields (see stageline.models.Content)"
        )
    return name


def encode_content(unit: Content) -> ContentRow:
    """The row values of ``unit``.

    Raises:
        ContentTypeError: the unit's class is not a declared content type, or a field value
            cannot be stored as JSON.
        StoreArgumentError: a key field holds NaN or infinity, or the type name holds a NUL
            character or is longer than 255 characters.
    """
    name = check_declared(unit)
    check_text(name, "content type name", max_chars=NAME_MAX_CHARS)
    natural_json, natural_digest = _key_json_and_digest(name, unit.natural_key())
    try:
        data = _data_json(unit)
        if not data.isascii():
            # The drivers send UTF-8; fail here, naming the unit, not deep in the driver.
            data.encode()
    except UnicodeEncodeError as exc:
        raise ContentTypeError(
            f"content of type {name!r} with natural key {unit.natural_key()!r} cannot be "
            f"stored: {_NOT_UNICODE}: {exc}"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ContentTypeError(
            f"content of type {name!r} with natural key {unit.natural_key()!r} cannot be "
            f"stored: its fields must be JSON values (str, int, float, bool, None, list, "
            f"dict): {exc}"
        ) from exc
    repo = key_digest(name, unit.repo_key()) if unit.repo_key_fields else None
    return (name, natural_json, natural_digest, repo, data)


def repo_key_of(unit: Content) -> str | None:
    """The repository-key digest of ``unit``, or None when its type declares no repo key."""
    if not unit.repo_key_fields:
        return None
    return key_digest(check_declared(unit), unit.repo_key())


def decode_content(type_name: str, data: str | dict[str, Any], pk: int) -> Content:
    """Rebuild a saved unit from its row: its fields as JSON text, or already parsed.

    Raises:
        ContentTypeError: no imported module declares ``type_name``, or the stored fields no
            longer fit the declared class.
    """
    cls = content_type_named(type_name)
    if cls is None:
        raise ContentTypeError(
            f"the database holds content of type {type_name!r}, which no imported module "
            "declares; import the plugin that declares it before reading this content"
        )
    try:
        fields = json.loads(data) if isinstance(data, str) else data
        return cls(**fields, pk=pk)
    except (TypeError, ValueError) as exc:
        raise ContentTypeError(
            f"stored content {pk} of type {type_name!r} does not fit "
            f"{cls.__module__}.{cls.__qualname__} any more ({exc}); the type's fields changed "
            "since it was saved"
        ) from exc
