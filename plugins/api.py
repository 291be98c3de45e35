"""The versioned optimizer-plugin contract: which version a factory is called with, and why.

A plugin says which contract it was written for (``register(..., plugin_api=N)`` or a module
attribute ``PLUGIN_API = N``); a plugin written before versions existed is recognised by its
factory's signature. The registry then calls the factory the way that version promised, so a
plugin keeps working for one version after the contract changes, with a warning, instead of
failing with a ``TypeError`` its author never saw coming. jax-free. Reference:
docs/optimizers.md#plugin-api-versions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from plugins.errors import PluginAPIError

PLUGIN_API = 2
"""The optimizer-plugin contract this registry implements (see :data:`CONTRACTS`)."""

OLDEST_PLUGIN_API = 1
"""The oldest contract still served (deprecated when older than :data:`PLUGIN_API`)."""

CONTRACTS: dict[int, str] = {
    1: "factory(*, learning_rate, max_grad_norm, **hyperparams), which applies the clip itself",
    2: "factory(*, learning_rate, **hyperparams) without a clip; the registry applies it once",
}
"""What each version calls the factory with, in one line (used in messages)."""


class PluginAPIDeprecationWarning(FutureWarning):
    """A plugin uses a contract that still works but will be removed in the next version.

    A ``FutureWarning``, not a ``DeprecationWarning``: the person who must act is a plugin author
    running ``ppo-train`` or a script, and Python hides ``DeprecationWarning`` outside
    ``__main__`` by default (and this project's pytest configuration ignores it).
    """


def describe(api: int) -> str:
    """``"plugin API 2 (factory(...) ...)"`` for messages that must name both contracts."""
    return f"plugin API {api} ({CONTRACTS[api]})" if api in CONTRACTS else f"plugin API {api}"


def _takes_max_grad_norm(factory: Callable[..., Any]) -> tuple[bool | None, bool, bool]:
    """``(named, required, var_keyword)`` of ``max_grad_norm`` in ``factory``'s signature;
    ``named`` is ``None`` when the signature cannot be read."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # some builtins and C callables have no signature
        return None, False, False
    param = params.get("max_grad_norm")
    keyword = param is not None and param.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    required = keyword and param.default is inspect.Parameter.empty
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return keyword, required, var_kw


def resolve_api(declared: Any, factory: Callable[..., Any], *, optimizer: str) -> int:
    """The contract ``factory`` is called with, or :class:`PluginAPIError` (one line).

    - declared newer than :data:`PLUGIN_API`: refused (it may need what we do not provide);
    - declared :data:`PLUGIN_API`: the factory must not require ``max_grad_norm``;
    - declared 1: the factory must accept ``max_grad_norm`` (by name or ``**kwargs``);
    - nothing declared (a plugin written before versions existed), or a version older than any
      contract: recognised by the signature, 1 if it names ``max_grad_norm``, else 2.
    """
    name = getattr(factory, "__qualname__", None) or repr(factory)
    if declared is not None and (isinstance(declared, bool) or not isinstance(declared, int)):
        raise PluginAPIError(
            f"optimizer {optimizer!r} declares plugin_api={declared!r}; expected an int "
            f"(this registry implements plugin API {OLDEST_PLUGIN_API} to {PLUGIN_API})"
        )
    named, required, var_kw = _takes_max_grad_norm(factory)
    if declared is None or declared < OLDEST_PLUGIN_API:
        return OLDEST_PLUGIN_API if named else PLUGIN_API
    if declared > PLUGIN_API:
        raise PluginAPIError(
            f"optimizer {optimizer!r} is written for plugin API {declared}, but this registry "
            f"implements {describe(PLUGIN_API)}; upgrade snake-ppo-jax or use a release of the "
            f"plugin written for plugin API {PLUGIN_API}"
        )
    if declared == PLUGIN_API and required:
        raise PluginAPIError(
            f"optimizer {optimizer!r} declares {describe(PLUGIN_API)}, but its factory {name} "
            f"requires max_grad_norm as in {describe(1)}; drop max_grad_norm and its clip, or "
            f"declare plugin_api=1"
        )
    if declared == 1 and named is False and not var_kw:
        raise PluginAPIError(
            f"optimizer {optimizer!r} declares {describe(1)}, but its factory {name} takes no "
            f"max_grad_norm; declare plugin_api={PLUGIN_API}: {CONTRACTS[PLUGIN_API]}"
        )
    return declared


def deprecation(plugin: str, optimizers: list[str]) -> str:
    """The one-line deprecation message for ``plugin`` serving ``optimizers`` by plugin API 1."""
    names = ", ".join(repr(o) for o in optimizers)
    which = f"optimizer {names} is" if len(optimizers) == 1 else f"optimizers {names} are"
    return (
        f"{plugin}: {which} written for {describe(1)}, deprecated: it keeps working until plugin "
        f"API {PLUGIN_API + 1} (max_grad_norm is passed and the registry does not clip again); "
        f"port it to {describe(PLUGIN_API)} and declare PLUGIN_API = {PLUGIN_API} "
        f"(docs/optimizers.md#plugin-api-versions)"
    )
