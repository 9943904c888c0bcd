"""The one composer of ChargePoint classes for the ``ocpp`` package, and its typed ``on`` / ``after``.

Each area contributes a :class:`Part` for one OCPP version and one side: a mixin class whose methods
carry ``@on(action)`` / ``@after(action)`` (the handlers) or are plain methods the application calls,
a ``setup`` that gives a new instance the part's state, and the constructor keywords the part reads.
:func:`compose` puts the parts in front of the version's ``ocpp`` ChargePoint in one class.

The ``ocpp`` package keeps one handler per action and silently lets one win when two methods handle
the same action, so :func:`compose` checks at class creation and raises
:class:`~ocppsec.pki.errors.UsageError` when

- two parts handle the same action (``on`` or ``after``), naming both parts and the action;
- a part's ``after`` hook has no ``on`` handler of its own for the action;
- two parts define the same attribute (method, class attribute or annotated instance attribute), or a
  part redefines one of the ChargePoint's own (``call``, ``start``, ...);
- a part's version or side is not the class's, or a mixin has an ``__init__`` (state belongs in ``setup``).

A composed class checks its subclasses too: a subclass that handles an action one of the parts
handles, or that inherits from two composed classes (whose second ``setup`` would never run, and whose
handlers would shadow each other), raises the same error when it is defined.

Nothing here imports the ``ocpp`` package until a handler is decorated or a class is composed.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import importlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ocppsec.pki.errors import UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import wire_names

__all__ = ["Part", "Setup", "Side", "after", "compose", "on"]

_F = TypeVar("_F", bound=Callable[..., Any])
Setup = Callable[[Any, Mapping[str, Any]], None]
"""``setup(instance, options)``: give a new instance the part's state; ``options`` are the constructor
keywords the part declared (only those given)."""

_SPECIAL = frozenset({"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__",
                      "__firstlineno__", "__static_attributes__", "__orig_bases__", "__parameters__"})


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """``ocpp.routing.on`` with a type: the method answers ``action``."""
    from ocpp.routing import on as ocpp_on

    decorator: Callable[[_F], _F] = ocpp_on(action, skip_schema_validation=skip_schema_validation)
    return decorator


def after(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after`` with a type: the method runs after the answer to ``action`` was sent.

    The ``ocpp`` package starts an async hook as a task it keeps no reference to: the task outlives the
    connection, and a hook still waiting when the connection ends is destroyed pending, or its failure
    is reported only as "exception was never retrieved". Here the ChargePoint owns the hook's task:
    :func:`compose`'s ``start`` cancels the hooks still running when the connection ends, and a hook
    that fails is logged with the action and the station.
    """
    from ocpp.routing import after as ocpp_after

    def wrap(hook: _F) -> _F:
        if not inspect.iscoroutinefunction(hook):
            return hook

        @functools.wraps(hook)  # keeps the signature: the ocpp package looks for call_unique_id in it
        def run(self: Any, *args: Any, **kwargs: Any) -> None:
            _spawn_after(self, action, hook(self, *args, **kwargs))

        return run  # type: ignore[return-value]  # same signature, runs the hook as an owned task

    def decorator(hook: _F) -> _F:
        wrapped: _F = ocpp_after(action)(wrap(hook))
        return wrapped

    return decorator


_LOG = logging.getLogger("ocppsec.chargepoint")
_AFTER_TASKS = "_ocppsec_after_tasks"


def _spawn_after(instance: Any, action: str, hook: Coroutine[Any, Any, Any]) -> None:
    tasks: set[asyncio.Task[Any]] | None = instance.__dict__.get(_AFTER_TASKS)
    if tasks is None:
        tasks = instance.__dict__[_AFTER_TASKS] = set()
    task = asyncio.get_running_loop().create_task(hook, name=f"{instance.id}: after {action}")
    tasks.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and (exc := finished.exception()) is not None:
            _LOG.error("%s: the step after %s failed: %s", instance.id, action, exc, exc_info=exc)

    task.add_done_callback(done)


def _cancel_after_hooks(instance: Any) -> None:
    for task in list(instance.__dict__.get(_AFTER_TASKS, ())):
        task.cancel()


class Side(enum.Enum):
    """Which end of the connection a ChargePoint class plays."""

    CSMS = "csms"
    STATION = "station"


def _no_setup(instance: Any, options: Mapping[str, Any]) -> None:
    return None


def _members(handlers: type) -> Iterator[tuple[str, object]]:
    """The names the mixin defines (methods, class attributes), with their values."""
    for klass in handlers.__mro__:
        if klass is not object:
            yield from ((n, v) for n, v in vars(klass).items() if n not in _SPECIAL)


def _declared(handlers: type) -> Iterator[str]:
    """The names the mixin annotates: its instance state, and what it reads of the ChargePoint (``id``)."""
    for klass in handlers.__mro__:
        if klass is not object:
            yield from getattr(klass, "__annotations__", {})


@dataclass(frozen=True, slots=True)
class Part:
    """One area's handlers for one side of one OCPP version (see the module docstring)."""

    name: str  # for error messages: "certificate management", "security events", ...
    version: OcppVersion
    side: Side
    handlers: type  # the mixin: @on / @after methods and the methods the part offers
    setup: Setup = _no_setup
    options: frozenset[str] = field(default_factory=frozenset)  # constructor keywords the part reads

    def _hooks(self, kind: str) -> frozenset[str]:
        return frozenset(a for _, v in _members(self.handlers) if isinstance(a := getattr(v, kind, None), str))

    @property
    def actions(self) -> frozenset[str]:
        """The actions this part answers (``@on``)."""
        return self._hooks("_on_action")

    @property
    def after_actions(self) -> frozenset[str]:
        """The actions this part runs an ``@after`` hook for."""
        return self._hooks("_after_action")

    @property
    def defined_names(self) -> frozenset[str]:
        """The methods and class attributes the part defines."""
        return frozenset(name for name, _ in _members(self.handlers))

    @property
    def attribute_names(self) -> frozenset[str]:
        """Every name the part uses on an instance: what it defines and what it annotates."""
        return self.defined_names | frozenset(_declared(self.handlers))


_BASE_NAMES: dict[type, frozenset[str]] = {}


def _base_names(base: type) -> frozenset[str]:
    """The ChargePoint's methods and class attributes, and the instance attributes its ``__init__`` sets."""
    names = _BASE_NAMES.get(base)
    if names is None:
        probe = base("probe", None)  # stores its arguments and builds locks and a queue; no I/O
        names = _BASE_NAMES[base] = frozenset(dir(base)) | frozenset(vars(probe)) | {"parts"}  # parts: ours
    return names


def _check(version: OcppVersion, side: Side, parts: tuple[Part, ...], base: type) -> None:
    where = f"({side.value} side, OCPP {version.value})"
    for part in parts:
        if part.version is not version or part.side is not side:
            raise UsageError(f"part {part.name!r} is for the {part.side.value} side of OCPP {part.version.value}, "
                             f"not the {side.value} side of OCPP {version.value}")
        if any("__init__" in vars(k) for k in part.handlers.__mro__ if k is not object):
            raise UsageError(f"part {part.name!r} defines __init__; give the state in its setup instead")
        for action in part.after_actions - part.actions:
            raise UsageError(f"part {part.name!r} has an after-hook for {action} but does not handle {action} {where}")
        own = part.defined_names & _base_names(base)
        if own:
            raise UsageError(f"part {part.name!r} redefines {', '.join(sorted(own))} of the ocpp ChargePoint {where}")
    for kind, label in (("actions", "handle"), ("after_actions", "run an after-hook for")):
        owner: dict[str, Part] = {}
        for part in parts:
            for action in sorted(getattr(part, kind)):
                if action in owner:
                    raise UsageError(f"parts {owner[action].name!r} and {part.name!r} both {label} {action} {where}",
                                     hint="compose only one part per action")
                owner[action] = part
    names: dict[str, Part] = {}
    for part in parts:
        for name in sorted(part.attribute_names - _base_names(base)):  # annotating `id` only reads it
            if name in names and names[name] is not part:
                raise UsageError(f"parts {names[name].name!r} and {part.name!r} both define {name} {where}",
                                 hint="each part names its attributes after its area")
            names[name] = part


def compose(version: OcppVersion, side: Side, parts: Iterable[Part], *, name: str | None = None,
            module: str | None = None) -> type:
    """One subclass of ``ocpp.vXX.ChargePoint`` with every part's handlers; raises UsageError on a clash.

    Instances are built as ``cls(station_id, connection, **keywords)``: each keyword a part declared in
    its ``options`` goes to that part's ``setup``, the others (``response_timeout``, ``logger``) to the
    ``ocpp`` ChargePoint. The class lists its parts in ``cls.parts``; ``name`` and ``module`` name it
    (default ``CsmsChargePoint_V201`` and so on, in this module).
    """
    chosen = tuple(parts)
    base: type = importlib.import_module(wire_names(version).ocpp_module).ChargePoint
    _check(version, side, chosen, base)
    options = frozenset().union(*(p.options for p in chosen))

    def __init__(self: Any, id: str, connection: Any, **keywords: Any) -> None:
        given = {k: keywords.pop(k) for k in list(keywords) if k in options}
        base.__init__(self, id, connection, **keywords)  # type: ignore[misc]  # the ocpp ChargePoint's own
        for part in chosen:
            part.setup(self, {k: v for k, v in given.items() if k in part.options})

    async def start(self: Any) -> None:
        try:
            await base.start(self)  # type: ignore[attr-defined]  # the ocpp ChargePoint's receive loop
        finally:  # the connection ended: nothing after an answer on it is still worth sending
            _cancel_after_hooks(self)

    def __init_subclass__(cls: type, /) -> None:  # object's takes no keywords either; nothing to chain to
        _check_subclass(cls)

    class_name = name or f"{side.name.title()}ChargePoint_{version.name}"
    doc = f"OCPP {version.value} {side.value} side: " + ", ".join(p.name for p in chosen) + "."
    composed = type(class_name, (*(p.handlers for p in chosen), base),
                    {"__init__": __init__, "start": start, "__init_subclass__": classmethod(__init_subclass__), "__doc__": doc,
                     "__qualname__": class_name, "__module__": module or __name__, "parts": chosen})
    return composed


def _check_subclass(cls: type) -> None:
    """A subclass of a composed class may add handlers for other actions, nothing else that clashes."""
    compositions = [(k.__name__, vars(k)["parts"]) for k in cls.__mro__[1:] if "parts" in vars(k)]
    if len(compositions) > 1:
        (first, first_parts), (second, second_parts) = compositions[:2]
        for a in first_parts:
            for b in second_parts:
                for action in sorted((a.actions & b.actions) | (a.after_actions & b.after_actions)):
                    raise UsageError(f"{cls.__name__}: part {a.name!r} of {first} and part {b.name!r} of {second} "
                                     f"both handle {action}", hint="compose all the parts in one class")
        raise UsageError(f"{cls.__name__} inherits from {len(compositions)} composed ChargePoint classes; "
                         f"only the parts of {first} would be set up", hint="compose all the parts in one class")
    parts = compositions[0][1] if compositions else ()
    for attr, value in vars(cls).items():
        for kind, label in (("_on_action", "handles"), ("_after_action", "runs an after-hook for")):
            action = getattr(value, kind, None)
            owner = next((p for p in parts if action in (p.actions if kind == "_on_action" else p.after_actions)), None)
            if owner is not None:
                raise UsageError(f"{cls.__name__}.{attr} {label} {action}, which part {owner.name!r} already handles",
                                 hint="leave the action to the part, or compose without it")
