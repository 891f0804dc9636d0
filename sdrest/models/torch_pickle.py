"""A restricted reader for PyTorch's pickled state dicts: names, dtypes and shapes only.

This is a port of stable-diffusion.cpp's ``pickle_io.cpp``, so it accepts exactly
what sd.cpp accepts. It is an interpreter of pickle opcodes that builds plain
values and never imports, calls or executes anything: ``GLOBAL`` only records a
name, ``REDUCE`` only recognises ``torch._utils._rebuild_tensor(_v2)`` and
``collections.OrderedDict`` by that name and turns every other call into None.
The standard library's ``pickle`` is not used at all. Errors say which opcode
or structure failed and at which offset, never a byte, name or string of the pickle.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from sdrest.models.tensors import MAX_DIMS, FormatError

__all__ = [
    "NeedMoreData",
    "PickleTensor",
    "StateDict",
    "is_torch_magic_number",
    "parse_state_dict",
    "parse_uint32_object",
    "skip_pickle_object",
]

# storage class -> (dtype name, sd.cpp's ggml type, bytes per stored element)
_STORAGES: dict[str, tuple[str, int]] = {
    "torch.FloatStorage": ("f32", 4),
    "torch.DoubleStorage": ("f64", 8),
    "torch.HalfStorage": ("f16", 2),
    "torch.BFloat16Storage": ("bf16", 2),
    "torch.IntStorage": ("i32", 4),
    "torch.LongStorage": ("i64", 8),
}
_TORCH_MAGIC = bytes([0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19])


class NeedMoreData(Exception):
    """The buffer ends inside a pickle: read more of the file and try again."""


@dataclass(frozen=True, slots=True)
class PickleTensor:
    """A tensor found in a state dict: its storage, offset into it (bytes), dtype and shape."""

    name: str
    storage_key: str
    offset: int
    dtype: str
    element_size: int
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data in its storage."""
        return math.prod(self.shape) * self.element_size


@dataclass(slots=True)
class StateDict:
    """Tensors of a state dict pickle (in sd.cpp's order) and the byte size of each storage."""

    tensors: list[PickleTensor] = field(default_factory=list)
    storage_nbytes: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# skipping whole pickle objects (legacy torch files hold several in a row)


def _find_nl(buf: bytes, p: int, end: int) -> int:
    i = buf.find(b"\n", p, end)
    if i < 0:
        raise NeedMoreData
    return i - p


def skip_pickle_object(buf: bytes, start: int = 0, *, complete: bool = True) -> int | None:
    """Size of the pickle object at ``start`` (up to and including STOP), or None if invalid.

    With ``complete=False`` the buffer may be a prefix of the file: running out of bytes
    raises :class:`NeedMoreData` instead of answering None.
    """
    try:
        return _skip(buf, start)
    except NeedMoreData:
        if complete:
            return None
        raise


def _skip(buf: bytes, start: int) -> int | None:
    p, end = start, len(buf)
    while p < end:
        op = buf[p]
        p += 1
        if op == 0x2E:  # STOP
            return p - start
        if op in _SKIP1:
            p += 1  # (sd.cpp skips only the length byte of SHORT_BINBYTES: mirrored)
        elif op in _SKIP2:
            p += 2
        elif op in _SKIP4:
            p += 4
        elif op in _SKIP_LINE:
            p += _find_nl(buf, p, end) + 1
        elif op in (0x47, 0x95):  # BINFLOAT, FRAME
            p += 8
        elif op in (0x8A, 0x55, 0x8C):  # LONG1, SHORT_BINSTRING, SHORT_BINUNICODE
            if p >= end:
                raise NeedMoreData
            p += 1 + buf[p]
        elif op in (0x8B, 0x42, 0x54, 0x58):  # LONG4, BINBYTES, BINSTRING, BINUNICODE
            if p + 4 > end:
                raise NeedMoreData
            p += 4 + struct.unpack_from("<I", buf, p)[0]
        elif op in (0x8D, 0x8E, 0x96):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
            if p + 8 > end:
                raise NeedMoreData
            k = struct.unpack_from("<Q", buf, p)[0]
            p += 8
            if k > end - p:
                raise NeedMoreData
            p += k
        elif op in (0x63, 0x69):  # GLOBAL, INST: two text lines
            p += _find_nl(buf, p, end) + 1
            p += _find_nl(buf, p, end) + 1
        elif op in _NO_ARG:
            pass
        else:
            return None
        if p > end:
            raise NeedMoreData
    raise NeedMoreData


_SKIP1 = frozenset({0x80, 0x4B, 0x68, 0x71, 0x43, 0x82})
_SKIP2 = frozenset({0x4D, 0x83})
_SKIP4 = frozenset({0x4A, 0x6A, 0x72, 0x84})
_SKIP_LINE = frozenset(b"ILFSVP")
_NO_ARG = frozenset(b"}](t)lQRuseabNo012") | frozenset(
    {0x85, 0x86, 0x87, 0x94, 0x88, 0x89, 0x81, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x97, 0x98}
)


def is_torch_magic_number(buf: bytes) -> bool:
    """True when this pickle object is PyTorch's legacy magic number (sd.cpp's check)."""
    n = len(buf)
    if n < 5 or buf[0] != 0x80:
        return False
    pos = 2
    if buf[pos] != 0x8A or pos + 1 >= n:
        return False
    pos += 1
    length = buf[pos]
    pos += 1
    if length != len(_TORCH_MAGIC) or pos + length >= n:
        return False
    if buf[pos : pos + length] != _TORCH_MAGIC:
        return False
    pos += length
    return pos < n and buf[pos] == ord(".")


def parse_uint32_object(buf: bytes) -> int | None:
    """The value of a pickle holding one small unsigned int, or None (sd.cpp's check)."""
    n = len(buf)
    if n < 4 or buf[0] != 0x80:
        return None
    pos = 2
    op = buf[pos]
    pos += 1
    if op == ord("K"):
        if pos + 1 >= n:
            return None
        value, pos = buf[pos], pos + 1
    elif op == ord("M"):
        if pos + 2 >= n:
            return None
        value, pos = struct.unpack_from("<H", buf, pos)[0], pos + 2
    elif op == ord("J"):
        if pos + 4 >= n:
            return None
        value, pos = struct.unpack_from("<i", buf, pos)[0] & 0xFFFFFFFF, pos + 4
    else:
        return None
    return value if pos < n and buf[pos] == ord(".") else None


# ---------------------------------------------------------------------------------------------
# the state dict interpreter

_MARK, _NONE, _BOOL, _INT, _STR, _GLOBAL, _TUPLE, _LIST, _DICT, _ODICT, _STORAGE, _TENSOR = range(12)


MAX_COPIED_ITEMS = 20_000_000
"""Work budget of one parse: container items copied by memo / DUP operations. A pickle can
make this quadratic in its size (a long list, duplicated again and again); past the budget
the file is refused instead of hanging."""


class _V:
    """A pickle value: a kind and what that kind carries. Copied, never shared (as in sd.cpp)."""

    __slots__ = ("items", "kind", "val")

    def __init__(self, kind: int, val: Any = None, items: list[Any] | None = None) -> None:
        self.kind = kind
        self.val: Any = val
        self.items: list[Any] | None = items


class _Copier:
    """Copies values (memo and DUP have value semantics in sd.cpp) within a work budget."""

    __slots__ = ("left",)

    def __init__(self, budget: int) -> None:
        self.left = budget

    def __call__(self, v: _V) -> _V:
        if v.items is None:
            return _V(v.kind, v.val)
        self.left -= len(v.items) + 1
        if self.left < 0:
            raise FormatError("torch pickle is too complex to read (it duplicates large containers)")
        return _V(v.kind, v.val, list(v.items))


_NONE_V = _V(_NONE)


def _fail(msg: str) -> FormatError:
    return FormatError(msg)


def _extend_from_mark(stack: list[_V], error: str) -> None:
    """APPENDS / ADDITEMS: move everything above the topmost mark into the list (or set) below it."""
    m = _mark_index(stack)
    if m <= 0 or stack[m - 1].kind != _LIST:
        raise _fail(error)
    target = stack[m - 1]
    assert target.items is not None
    target.items.extend(stack[m + 1 :])
    del stack[m:]


def _mark_index(stack: list[_V]) -> int:
    i = len(stack) - 1
    while i >= 0 and stack[i].kind != _MARK:
        i -= 1
    return i


def _int_val(v: _V) -> int:
    assert isinstance(v.val, int)
    return v.val


def _collect(value: _V, out: list[PickleTensor]) -> None:
    if value.kind not in (_DICT, _ODICT) or value.items is None:
        return
    for key, item in value.items:
        if key.kind == _STR and item.kind == _TENSOR:
            t = item.val
            assert isinstance(t, PickleTensor)
            out.append(PickleTensor(str(key.val), t.storage_key, t.offset, t.dtype, t.element_size, t.shape))
        elif item.kind in (_DICT, _ODICT):
            _collect(item, out)


def parse_state_dict(buf: bytes) -> StateDict:
    """Tensors of a torch state-dict pickle; :class:`FormatError` where sd.cpp would refuse it."""
    try:
        return _parse_state_dict(buf)
    except RecursionError:
        raise FormatError("torch pickle nests containers too deeply") from None


def _parse_state_dict(buf: bytes) -> StateDict:
    n = len(buf)
    if n < 2 or buf[0] != 0x80 or not 2 <= buf[1] <= 5:
        raise _fail("unsupported torch pickle protocol")
    result = StateDict()
    stack: list[_V] = []
    memo: dict[int, _V] = {}
    copy = _Copier(MAX_COPIED_ITEMS)
    p = 2

    def need(k: int) -> None:
        if p + k > n:
            raise _fail("torch pickle ends inside an opcode")

    def text_line() -> bytes:
        nonlocal p
        i = buf.find(b"\n", p)
        if i < 0:
            raise _fail("torch pickle ends inside a text argument")
        s = buf[p:i]
        p = i + 1
        return s

    def push_str(k: int) -> None:
        nonlocal p
        need(k)
        stack.append(_V(_STR, buf[p : p + k].decode("utf-8", "surrogateescape")))
        p += k

    while p < n:
        op = buf[p]
        at = p
        p += 1
        if op == 0x2E:  # STOP
            if not stack:
                raise _fail("empty torch pickle stack")
            _collect(stack[-1], result.tensors)
            if not result.tensors:
                raise _fail("torch pickle does not contain a supported state_dict")
            return result
        if op == 0x7D:  # EMPTY_DICT
            stack.append(_V(_DICT, items=[]))
        elif op == 0x5D:  # EMPTY_LIST
            stack.append(_V(_LIST, items=[]))
        elif op == 0x6C:  # LIST
            m = _mark_index(stack)
            if m < 0:
                raise _fail("torch pickle list without mark")
            items: list[object] = list(stack[m + 1 :])
            del stack[m:]
            stack.append(_V(_LIST, items=items))
        elif op == 0x28:  # MARK
            stack.append(_V(_MARK))
        elif op == 0x29:  # EMPTY_TUPLE
            stack.append(_V(_TUPLE, items=[]))
        elif op == 0x4E:  # NONE
            stack.append(_NONE_V)
        elif op in (0x88, 0x89):  # NEWTRUE / NEWFALSE
            stack.append(_V(_BOOL, op == 0x88))
        elif op == 0x4B:  # BININT1
            need(1)
            stack.append(_V(_INT, buf[p]))
            p += 1
        elif op == 0x4D:  # BININT2
            need(2)
            stack.append(_V(_INT, struct.unpack_from("<H", buf, p)[0]))
            p += 2
        elif op == 0x4A:  # BININT
            need(4)
            stack.append(_V(_INT, struct.unpack_from("<i", buf, p)[0]))
            p += 4
        elif op == 0x49:  # INT
            s = text_line()
            if s == b"01":
                stack.append(_V(_BOOL, True))
            elif s == b"00":
                stack.append(_V(_BOOL, False))
            else:
                stack.append(_V(_INT, _strtoll(s)))
        elif op == 0x4C:  # LONG
            s = text_line()
            if s.endswith(b"L"):
                s = s[:-1]
            stack.append(_V(_INT, _strtoll(s)))
        elif op == 0x46:  # FLOAT
            text_line()
            stack.append(_NONE_V)
        elif op == 0x47:  # BINFLOAT
            need(8)
            p += 8
            stack.append(_NONE_V)
        elif op == 0x8A:  # LONG1
            need(1)
            k = buf[p]
            p += 1
            if p + k > n or k > 8:
                raise _fail("torch pickle LONG1 too long")
            v = 0
            for i in range(k):
                v |= buf[p + i] << (i * 8)
            if v >= 1 << 63:
                v -= 1 << 64  # int64 wrap, as in C
            p += k
            stack.append(_V(_INT, v))
        elif op == 0x43:  # SHORT_BINBYTES
            need(1)
            k = buf[p]
            p += 1
            push_str(k)
        elif op in (0x42, 0x54, 0x58):  # BINBYTES, BINSTRING, BINUNICODE
            need(4)
            k = struct.unpack_from("<i", buf, p)[0]
            p += 4
            if k < 0:
                raise _fail("torch pickle string with negative length")
            push_str(k)
        elif op in (0x8D, 0x8E, 0x96):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
            need(8)
            k = struct.unpack_from("<Q", buf, p)[0]
            p += 8
            if k > n - p:
                raise _fail("torch pickle string runs past the end")
            push_str(k)
        elif op in (0x55, 0x8C):  # SHORT_BINSTRING, SHORT_BINUNICODE
            need(1)
            k = buf[p]
            p += 1
            push_str(k)
        elif op == 0x53:  # STRING
            s = text_line()
            if len(s) >= 2 and s[:1] in (b"'", b'"') and s[-1:] == s[:1]:
                s = s[1:-1]
            stack.append(_V(_STR, s.decode("utf-8", "surrogateescape")))
        elif op == 0x56:  # UNICODE
            stack.append(_V(_STR, text_line().decode("utf-8", "surrogateescape")))
        elif op == 0x63:  # GLOBAL: recorded as a name, never imported
            module = text_line().decode("utf-8", "surrogateescape")
            name = text_line().decode("utf-8", "surrogateescape")
            stack.append(_V(_GLOBAL, f"{module}.{name}"))
        elif op == 0x93:  # STACK_GLOBAL
            if len(stack) < 2 or stack[-2].kind != _STR or stack[-1].kind != _STR:
                raise _fail("torch pickle STACK_GLOBAL without two strings")
            name = str(stack.pop().val)
            module = str(stack.pop().val)
            stack.append(_V(_GLOBAL, f"{module}.{name}"))
        elif op == 0x68:  # BINGET
            need(1)
            if buf[p] not in memo:
                raise _fail("torch pickle BINGET of an unknown memo entry")
            stack.append(copy(memo[buf[p]]))
            p += 1
        elif op == 0x6A:  # LONG_BINGET
            need(4)
            idx = struct.unpack_from("<i", buf, p)[0]
            if idx not in memo:
                raise _fail("torch pickle LONG_BINGET of an unknown memo entry")
            stack.append(copy(memo[idx]))
            p += 4
        elif op == 0x71:  # BINPUT
            need(1)
            if not stack:
                raise _fail("torch pickle BINPUT on an empty stack")
            memo[buf[p]] = copy(stack[-1])
            p += 1
        elif op == 0x72:  # LONG_BINPUT
            need(4)
            if not stack:
                raise _fail("torch pickle LONG_BINPUT on an empty stack")
            memo[struct.unpack_from("<i", buf, p)[0]] = copy(stack[-1])
            p += 4
        elif op == 0x94:  # MEMOIZE
            if not stack:
                raise _fail("torch pickle MEMOIZE on an empty stack")
            memo[len(memo)] = copy(stack[-1])
        elif op == 0x95:  # FRAME
            need(8)
            p += 8
        elif op == 0x30:  # POP
            if not stack:
                raise _fail("torch pickle POP on an empty stack")
            stack.pop()
        elif op == 0x31:  # POP_MARK
            m = _mark_index(stack)
            if m < 0:
                raise _fail("torch pickle POP_MARK without mark")
            del stack[m:]
        elif op == 0x32:  # DUP
            if not stack:
                raise _fail("torch pickle DUP on an empty stack")
            stack.append(copy(stack[-1]))
        elif op == 0x8F:  # EMPTY_SET
            stack.append(_V(_LIST, items=[]))
        elif op == 0x90:  # ADDITEMS
            _extend_from_mark(stack, "torch pickle ADDITEMS without a set")
        elif op == 0x91:  # FROZENSET
            m = _mark_index(stack)
            if m < 0:
                raise _fail("torch pickle FROZENSET without mark")
            items = list(stack[m + 1 :])
            del stack[m:]
            stack.append(_V(_LIST, items=items))
        elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
            k = op - 0x84
            if len(stack) < k:
                raise _fail("torch pickle TUPLE on a short stack")
            items = list(stack[-k:])
            del stack[-k:]
            stack.append(_V(_TUPLE, items=items))
        elif op == 0x74:  # TUPLE
            m = _mark_index(stack)
            if m < 0:
                raise _fail("torch pickle TUPLE without mark")
            items = list(stack[m + 1 :])
            del stack[m:]
            stack.append(_V(_TUPLE, items=items))
        elif op == 0x51:  # BINPERSID
            if not stack:
                raise _fail("torch pickle BINPERSID on an empty stack")
            pid = stack.pop()
            pitems = pid.items or []
            if (
                pid.kind != _TUPLE
                or len(pitems) < 5
                or pitems[0].kind != _STR
                or pitems[1].kind != _GLOBAL
                or pitems[4].kind != _INT
                or pitems[0].val != "storage"
            ):
                raise _fail("torch pickle persistent id is not a storage")
            key_v = pitems[2]
            key = str(key_v.val) if key_v.kind in (_STR, _INT) else ""
            storage = _STORAGES.get(str(pitems[1].val))
            if not key or storage is None:
                raise _fail("unsupported torch storage type")
            numel = _int_val(pitems[4])
            result.storage_nbytes[key] = (numel * storage[1]) & 0xFFFFFFFFFFFFFFFF
            stack.append(_V(_STORAGE, (key, storage[0], storage[1])))
        elif op == 0x52:  # REDUCE: never calls anything
            if len(stack) < 2:
                raise _fail("torch pickle REDUCE on a short stack")
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif op == 0x62:  # BUILD
            if len(stack) < 2:
                raise _fail("torch pickle BUILD on a short stack")
            stack.pop()
        elif op == 0x75:  # SETITEMS
            m = _mark_index(stack)
            if m <= 0:
                raise _fail("torch pickle SETITEMS without mark")
            d = stack[m - 1]
            if d.kind not in (_DICT, _ODICT):
                raise _fail("torch pickle SETITEMS on a non-dict")
            assert d.items is not None
            for i in range(m + 1, len(stack) - 1, 2):
                d.items.append((stack[i], stack[i + 1]))
            del stack[m:]
        elif op == 0x73:  # SETITEM
            if len(stack) < 3:
                raise _fail("torch pickle SETITEM on a short stack")
            value = stack.pop()
            key_item = stack.pop()
            d = stack[-1]
            if d.kind not in (_DICT, _ODICT):
                raise _fail("torch pickle SETITEM on a non-dict")
            assert d.items is not None
            d.items.append((key_item, value))
        elif op == 0x65:  # APPENDS
            _extend_from_mark(stack, "torch pickle APPENDS without a list")
        elif op == 0x61:  # APPEND
            if len(stack) < 2:
                raise _fail("torch pickle APPEND on a short stack")
            item = stack.pop()
            if stack[-1].kind != _LIST:
                raise _fail("torch pickle APPEND on a non-list")
            assert stack[-1].items is not None
            stack[-1].items.append(item)
        else:
            raise _fail(f"unsupported torch pickle opcode at offset {at}")
    raise _fail("unterminated torch state_dict pickle")


def _strtoll(s: bytes) -> int:
    """C's ``strtoll(s, NULL, 10)``: leading digits, 0 when there are none, clamped to int64."""
    t = s.strip()
    sign = 1
    if t[:1] in (b"+", b"-"):
        sign = -1 if t[:1] == b"-" else 1
        t = t[1:]
    digits = b""
    for ch in t:
        if 48 <= ch <= 57:
            digits += bytes([ch])
        else:
            break
    v = sign * int(digits) if digits else 0
    return max(-(1 << 63), min(v, (1 << 63) - 1))


def _reduce(func: _V, args: _V) -> _V:
    if func.kind != _GLOBAL or args.kind != _TUPLE:
        return _NONE_V
    a: list[_V] = args.items or []
    if func.val == "collections.OrderedDict" and not a:
        return _V(_ODICT, items=[])
    if (
        func.val in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor")
        and len(a) >= 4
        and a[0].kind == _STORAGE
        and a[1].kind == _INT
        and a[2].kind == _TUPLE
        and a[3].kind == _TUPLE
    ):
        key, dtype, esize = a[0].val
        shape_items: list[_V] = a[2].items or []
        stride_items: list[_V] = a[3].items or []
        if len(shape_items) > MAX_DIMS or len(stride_items) > MAX_DIMS:
            raise _fail("torch tensor with more than 5 dimensions")
        if any(v.kind != _INT for v in shape_items) or any(v.kind != _INT for v in stride_items):
            raise _fail("torch tensor with a non-integer shape or stride")
        shape = tuple(_int_val(v) for v in shape_items)
        stride = tuple(_int_val(v) for v in stride_items)
        if not _contiguous(shape, stride):
            raise _fail("non-contiguous torch tensor")
        offset = _int_val(a[1]) * esize
        return _V(_TENSOR, PickleTensor("", str(key), offset, str(dtype), int(esize), shape))
    return _NONE_V


def _contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    if math.prod(shape) == 0:
        return True
    if len(stride) != len(shape):
        return False
    expected = 1
    for dim, st in zip(reversed(shape), reversed(stride), strict=True):
        if st != expected:
            return False
        expected *= dim
    return True
