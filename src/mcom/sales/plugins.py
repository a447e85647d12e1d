"""After-plugins of the order mapping (the seed's ``LineMapper::afterToSpecification``).

A plugin changes what is sent to the OMS without editing mcom. Two hooks exist::

    def after_line_to_specification(item: OrderItem, line: OrderLine) -> OrderLine: ...
    def after_order_to_specification(order: Order, spec: OrderSpec) -> OrderSpec: ...

``item``/``order`` are the commerce models (read them, never save them); ``line``/``spec`` are the
frozen values of :mod:`mcom.sales.messages`. Return the (changed) value, e.g.
``line.with_attribute("gift_wrap", "yes")``. The line hook runs once per OMS line, i.e. once per
unit of an item (the shipping line is not passed to plugins). The order hook runs once, after every
line hook, on the complete spec.

Registration, without editing mcom (both may be used; a plugin found twice runs once):

1. **Entry points** of an installed distribution::

       [project.entry-points."mcom.sales.line_mapper"]
       gift_wrap = "my_pkg.plugin:GiftWrap"           # object with after_line_to_specification, or a function
       [project.entry-points."mcom.sales.order_mapper"]
       channel_tag = "my_pkg.plugin:tag_order"        # object with after_order_to_specification, or a function

   In the group ``mcom.sales.line_mapper`` a plain function is the line hook; in
   ``mcom.sales.order_mapper`` it is the order hook. A class is instantiated without arguments.

2. **env.toml** ``plugins = ["my_pkg.plugin:GiftWrap", "my_pkg.other"]`` (or ``MCOM_PLUGINS``): each entry is
   ``module`` or ``module:attribute``; the object (module, class → instantiated, instance) contributes
   whichever of the two methods it has. An entry with neither is an error.

Order: entry-point line plugins sorted by entry-point name, then env.toml plugins in list order;
the same for order plugins. Any exception raised by a plugin (or while loading it) becomes
:class:`PluginError` naming the plugin; the export of that order fails and is retried by cron —
nothing is lost. A hook that returns something other than the value it was given is an error too.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mcom import envconfig
from mcom.sales.messages import OrderLine, OrderSpec

if TYPE_CHECKING:
    from mcom.commerce.models import Order, OrderItem

log = logging.getLogger("mcom.sales")

LINE_GROUP = "mcom.sales.line_mapper"
ORDER_GROUP = "mcom.sales.order_mapper"
LINE_HOOK = "after_line_to_specification"
ORDER_HOOK = "after_order_to_specification"

LineHook = Callable[["OrderItem", OrderLine], OrderLine]
OrderHook = Callable[["Order", OrderSpec], OrderSpec]


class PluginError(Exception):
    """A plugin failed to load or to run; ``plugin`` is its name. ``str()`` is one line."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r} failed: {message}")
        self.plugin = plugin


@dataclass(frozen=True)
class NamedHook:
    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class PluginSet:
    """The loaded hooks in run order. ``errors`` lists plugins that could not be loaded."""

    line_hooks: tuple[NamedHook, ...] = ()
    order_hooks: tuple[NamedHook, ...] = ()
    errors: tuple[PluginError, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(h.name for h in (*self.line_hooks, *self.order_hooks)))

    def check(self) -> None:
        """Raise the first load error (an order must not be exported without a configured plugin)."""
        if self.errors:
            raise self.errors[0]

    def after_line(self, item: OrderItem, line: OrderLine) -> OrderLine:
        """Run every line hook in order. Raises :class:`PluginError` naming the failing plugin."""
        for hook in self.line_hooks:
            line = _run(hook, item, line, OrderLine)
        return line

    def after_order(self, order: Order, spec: OrderSpec) -> OrderSpec:
        """Run every order hook in order. Raises :class:`PluginError` naming the failing plugin."""
        for hook in self.order_hooks:
            spec = _run(hook, order, spec, OrderSpec)
        return spec


NO_PLUGINS = PluginSet()


def _run(hook: NamedHook, subject: Any, value: Any, kind: type) -> Any:
    try:
        result = hook.fn(subject, value)
    except Exception as e:  # noqa: BLE001 - the plugin boundary: any failure is the plugin's, named
        raise PluginError(hook.name, f"{type(e).__name__}: {e}") from e
    if not isinstance(result, kind):
        raise PluginError(hook.name, f"returned {type(result).__name__}, expected {kind.__name__}")
    return result


def _instantiate(obj: Any) -> Any:
    return obj() if isinstance(obj, type) else obj


def _resolve(reference: str) -> Any:
    module_name, _, attr = reference.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return _instantiate(obj)


def _hook(obj: Any, method: str, group_default: bool) -> Callable[..., Any] | None:
    fn = getattr(obj, method, None)
    if callable(fn):
        return fn  # type: ignore[no-any-return]
    if group_default and callable(obj) and not hasattr(obj, LINE_HOOK) and not hasattr(obj, ORDER_HOOK):
        return obj  # type: ignore[no-any-return]
    return None


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def load(env_plugins: Sequence[str] | None = None) -> PluginSet:
    """Discover and load plugins (entry points, then ``env_plugins`` / env.toml ``plugins``).

    Never raises: a plugin that cannot be loaded is kept in :attr:`PluginSet.errors`, so the
    export of every order fails with its name until it is fixed.
    """
    refs = tuple(envconfig.current().plugins if env_plugins is None else env_plugins)
    line: list[NamedHook] = []
    order: list[NamedHook] = []
    errors: list[PluginError] = []
    seen: set[Any] = set()

    def add(target: list[NamedHook], name: str, fn: Callable[..., Any] | None) -> None:
        key = getattr(fn, "__func__", fn), getattr(fn, "__self__", None).__class__
        if fn is not None and key not in seen:
            seen.add(key)
            target.append(NamedHook(name, fn))

    for group, target, method in ((LINE_GROUP, line, LINE_HOOK), (ORDER_GROUP, order, ORDER_HOOK)):
        for ep in _entry_points(group):
            try:
                obj = _instantiate(ep.load())
            except Exception as e:  # noqa: BLE001 - plugin boundary (import of third-party code)
                errors.append(PluginError(ep.name, f"cannot be loaded from {ep.value}: {type(e).__name__}: {e}"))
                continue
            fn = _hook(obj, method, group_default=True)
            if fn is None:
                errors.append(PluginError(ep.name, f"{ep.value} has no {method}() and is not callable"))
            add(target, ep.name, fn)
    for ref in refs:
        try:
            obj = _resolve(ref)
        except Exception as e:  # noqa: BLE001 - plugin boundary (import of third-party code)
            errors.append(PluginError(ref, f"cannot be loaded: {type(e).__name__}: {e}"))
            continue
        line_fn, order_fn = _hook(obj, LINE_HOOK, False), _hook(obj, ORDER_HOOK, False)
        if line_fn is None and order_fn is None:
            errors.append(PluginError(ref, f"has neither {LINE_HOOK}() nor {ORDER_HOOK}()"))
        add(line, ref, line_fn)
        add(order, ref, order_fn)
    for err in errors:
        log.error("%s", err)
    return PluginSet(tuple(line), tuple(order), tuple(errors))


@dataclass
class _Cache:
    key: tuple[str, ...] | None = None
    plugins: PluginSet | None = None


_cache = _Cache()


def current() -> PluginSet:
    """The plugins of this process, loaded once per env.toml ``plugins`` value (see :func:`reset`)."""
    key = tuple(envconfig.current().plugins)
    if _cache.plugins is None or _cache.key != key:
        _cache.plugins, _cache.key = load(key), key
    return _cache.plugins


def reset() -> None:
    """Forget the loaded plugins (after installing a plugin distribution in a running process)."""
    _cache.plugins = None
    _cache.key = None
    importlib.invalidate_caches()
