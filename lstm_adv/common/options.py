"""The one typed ``key=value`` command-line parser, built from frozen dataclasses.

Every ``python -m lstm_adv.X`` describes its keys as a frozen dataclass whose fields are made
with `option` (default, one line of help, optional choices, group and minimum). From it come:

- the parse (`parse`, `parse_with_rest`): ``key=value`` strings (a leading ``--`` allowed; a bare
  switch means ``key=1``), each key at most once, converted to the field's type;
- the errors, each one line raised as `UserError` (exit status 2): an unknown key with a
  "did you mean" (difflib), a value that is not the field's type, outside its choices or below
  its minimum, naming the key, the value and what is expected;
- ``--help`` (`help_text`): a usage line, the description, then one line per key with its
  default, type and help, under the dataclass's groups.

Types: ``int``, ``float`` (finite), ``str``, ``bool`` and ``tuple[T, ...]`` (a comma list, parsed
here only: `split_list`). Switches -- ``bool`` fields and ``int`` fields whose choices hold 0 and
1 -- take ``1/0``, ``true/false`` and ``yes/no`` in any case.
"""

import dataclasses
import difflib
import typing
from pathlib import Path

from . import checks
from .errors import UserError

HELP_FLAGS = ("-h", "--help", "help")
#: The last line of every key table in ``--help``.
KEYS_NOTE = ("Each key at most once, as key=value (a leading -- is allowed); a 0|1 switch also takes "
             "true/false or yes/no, and a bare key means key=1.")
_WORDS = {"1": 1, "true": 1, "yes": 1, "0": 0, "false": 0, "no": 0}


def option(default, help, choices=None, group=None, minimum=None, maximum=None, **extra):
    """A dataclass field of a command's options (``default``, one line of ``help``, ...).

    Parameters
    ----------
    default : int, float, str, bool or tuple
    help : str
        One line for ``--help``.
    choices : tuple, optional
        The accepted values (of each element, for a tuple field).
    group : str, optional
        The ``--help`` heading the key is listed under (default: ``keys``).
    minimum, maximum : int or float, optional
        The smallest and largest accepted values (of each element, for a tuple field).
    **extra
        More metadata for the command's own use (the training keys' ``role``).
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "group": group,
                                                         "minimum": minimum, "maximum": maximum, **extra})


def wants_help(argv):
    """Whether the command line asks for ``--help`` (``-h``, ``--help`` or ``help``)."""
    return any(a in HELP_FLAGS for a in argv)


def positional_arg(arg):
    """Whether an argument is a positional one (a folder or file) rather than a key: it has no ``=``,
    names an existing path, or has a ``/`` before its ``=`` (run directories have ``=`` in their names)."""
    try:
        return "=" not in arg or "/" in arg.partition("=")[0] or Path(arg).exists()
    except OSError:   # a name too long for the file system: not an existing path
        return False


def split_list(raw):
    """A comma list's items, stripped, empty ones dropped (``"0, 0.5,"`` -> ``["0", "0.5"]``)."""
    return [v.strip() for v in str(raw).split(",") if v.strip()]


def fields(cls):
    """``{name: (field, type)}`` of an options dataclass, types resolved, in field order."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def _element(typ):
    """The element type of ``tuple[T, ...]``, else None."""
    return typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else None


def is_switch(f, typ):
    """Whether a field takes ``1/0``, ``true/false``, ``yes/no``: a bool, or an int with choices 0 and 1."""
    choices = f.metadata.get("choices")
    return typ is bool or (typ is int and choices is not None and {0, 1} <= set(choices))


def _show(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(map(_show, value))
    return str(value)


def _type_name(f, typ):
    element = _element(typ)
    base = element or typ
    choices = f.metadata.get("choices")
    if choices:
        name = "|".join(str(c) for c in choices if c != "")
    elif base is bool:
        name = "0|1"
    else:
        name = base.__name__
    return name + ",..." if element else name


def unknown_key(name, known):
    """The `UserError` for a key that is not one of ``known``, with a "did you mean" where one is close."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {match[0]}?" if match else "; see --help for the keys"
    return UserError(f"unknown key {name!r}{hint}")


def split_pairs(argv, known, switches=()):
    """``key=value`` strings as ``(key, raw value)`` pairs, refusing what is not a known key.

    Parameters
    ----------
    argv : list of str
    known : collection of str
        The accepted keys.
    switches : collection of str
        Keys that may be given bare, meaning ``key=1``.

    Raises
    ------
    UserError
        For an argument without ``=`` (other than a switch), an unknown key (with a "did you
        mean"), or a key given twice.
    """
    pairs = []
    for arg in argv:
        name, sep, raw = arg.partition("=")
        name = name.strip().lstrip("-")
        if not sep:
            if name not in switches:
                raise UserError(f"argument {arg!r} is not key=value; see --help for the keys")
            raw = "1"
        if name not in known:
            raise unknown_key(name, known)
        pairs.append((name, raw))
    return checks.no_duplicates(pairs)


def _scalar(name, raw, typ, f, shown):
    """One value (the whole value, or one element of a comma list) converted to ``typ``."""
    text = raw.strip()
    if is_switch(f, typ) and text.lower() in _WORDS:
        return bool(_WORDS[text.lower()]) if typ is bool else _WORDS[text.lower()]
    if typ is bool:
        raise UserError(f"{name}={shown} is not one of 0, 1 (or true/false, yes/no)")
    choices = f.metadata.get("choices")
    try:
        value = int(text) if typ is int else float(text) if typ is float else (text if choices else raw)
    except ValueError:
        what = "an integer" if typ is int else "a number"
        raise UserError(f"{name}={shown!r} is not {what}; e.g. {name}={_show(f.default)}") from None
    if typ is float:
        checks.finite(name, value)
    if choices is not None and value not in choices:
        listed = ", ".join(str(c) for c in choices if c != "")
        switch = " (or true/false, yes/no)" if is_switch(f, typ) else ""
        match = difflib.get_close_matches(value, [c for c in choices if c], n=1) if isinstance(value, str) else []
        hint = f" (did you mean {name}={match[0]}?)" if match else ""
        raise UserError(f"{name}={shown} is not one of {listed}{switch}{hint}")
    minimum = f.metadata.get("minimum")
    if minimum is not None and value < minimum:
        raise UserError(f"{name}={value} must be >= {minimum}")
    maximum = f.metadata.get("maximum")
    if maximum is not None and value > maximum:
        raise UserError(f"{name}={value} must be <= {maximum}")
    return value


def convert(name, raw, f, typ):
    """``raw`` as the type of field ``f`` (``typ``), checked against its choices and minimum."""
    element = _element(typ)
    if element is None:
        return _scalar(name, raw, typ, f, raw)
    items = split_list(raw)
    if element in (int, float):
        for v in items:
            try:
                element(v)
            except ValueError:
                what = "integers" if element is int else "numbers"
                example = _show(f.default) or ("1,2" if element is int else "0.1,0.5")
                raise UserError(f"{name}={raw!r} must be comma-separated {what}, e.g. {name}={example}") from None
    return tuple(_scalar(name, v, element, f, raw) for v in items)


def parse_with_rest(cls, argv, positional=None, passthrough=False):
    """An instance of ``cls`` from ``key=value`` strings, and the arguments that are not its keys.

    Parameters
    ----------
    cls : type
        A frozen dataclass whose fields are made with `option`.
    argv : list of str
    positional : callable, optional
        ``positional(arg)`` True for an argument to hand back as it is (a folder, a file).
    passthrough : bool
        Hand back ``key=value`` arguments of keys ``cls`` does not have (another command's keys)
        instead of refusing them.

    Returns
    -------
    (cls instance, list of str)

    Raises
    ------
    UserError
        As `split_pairs` and `convert`.
    """
    spec = fields(cls)
    switches = [n for n, (f, typ) in spec.items() if is_switch(f, typ)]
    mine, rest = [], []
    for arg in argv:
        name = arg.partition("=")[0].strip().lstrip("-")
        if positional is not None and positional(arg):
            rest.append(arg)
        elif passthrough and name not in spec and "=" in arg:
            rest.append(arg)
        else:
            mine.append(arg)
    values = {name: convert(name, raw, *spec[name]) for name, raw in split_pairs(mine, spec, switches)}
    return cls(**values), rest


def parse(cls, argv):
    """An instance of ``cls`` (a dataclass of `option` fields) from ``key=value`` strings."""
    return parse_with_rest(cls, argv)[0]


def key_lines(cls, heading="keys", indent="  "):
    """``--help``'s lines for the keys of ``cls``: ``key=default  type  help``, under their groups
    (``heading`` for the keys without one)."""
    spec = fields(cls)
    cells = [(f"{n}={_show(f.default)}", _type_name(f, typ), f) for n, (f, typ) in spec.items()]
    # Column widths from the cells that fit; a longer one pushes its own line's help to the right.
    left = max((len(c[0]) for c in cells if len(c[0]) <= 26), default=0)
    middle = max((len(c[1]) for c in cells if len(c[1]) <= 22), default=0)
    groups = {}
    for key, typ, f in cells:
        groups.setdefault(f.metadata.get("group") or heading, []).append(
            f"{indent}{key:<{left}}  {typ:<{middle}}  {f.metadata['help']}")
    lines = []
    for group, rows in groups.items():
        lines += [f"{group}:", *rows, ""]
    return lines


def help_text(cls, usage, description="", epilog=""):
    """The ``--help`` of a command: ``usage: ...``, the description, the keys of ``cls``, the epilog.

    Parameters
    ----------
    cls : type or None
        The options dataclass (None: a command without keys).
    usage : str
        The command line after ``usage: ``, e.g. ``python -m lstm_adv.results RUNS_DIR [key=value ...]``.
    description, epilog : str
        Text before and after the keys.
    """
    lines = [f"usage: {usage}", ""]
    if description.strip():
        lines += [description.strip("\n"), ""]
    if cls is not None and dataclasses.fields(cls):
        lines += key_lines(cls) + [KEYS_NOTE, ""]
    else:
        lines += ["keys: none", ""]
    if epilog.strip():
        lines += [epilog.strip("\n"), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
