"""Register ``Snake-v0`` with gymnax the moment gymnax is imported, in any project.

gymnax has no entry-point discovery, so ``gymnax.make("Snake-v0")`` would fail in a process that
never imported ``snake_gymnax``.  The wheel ships ``snake_gymnax_autoload.pth``, whose single
``import`` line runs this module at interpreter start-up.  It only installs a ``sys.meta_path``
finder; the finder waits for ``import gymnax`` to finish and then imports ``snake_gymnax``
(which registers the env).  Nothing heavy happens at start-up: no jax, no gymnax, no
importlib machinery beyond what the interpreter has already loaded, so ``python -c pass`` costs
the same as before the install.

The finder stays armed until gymnax's module has actually executed: a probe such as
``importlib.util.find_spec("gymnax")`` also calls it, and the spec it returns is thrown away, so
uninstalling there (or relying on the wrapped loader of a discarded spec) would lose the
registration.  Every ``find_spec`` wraps the loader of the spec it hands out; whichever wrapped
loader executes gymnax registers the env and uninstalls the finder.

The hook must never break ``import gymnax``: any failure while registering becomes a warning.
Set ``SNAKE_GYMNAX_NO_AUTOLOAD=1`` to switch it off.
"""

import os
import sys

_TRIGGER = "gymnax"
_TARGET = "snake_gymnax"


class _GymnaxImportHook:
    """Meta-path finder that wraps gymnax's loader so registration runs after gymnax executes.

    It stays in ``sys.meta_path`` until a wrapped loader has executed gymnax: ``find_spec``
    alone (an optional-dependency probe) must not disarm it.
    """

    def __init__(self) -> None:
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):  # noqa: D401 - finder protocol
        if fullname != _TRIGGER or self._busy:
            return None
        self._busy = True
        try:
            spec = _find_with_others(self, fullname, path, target)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module
        if getattr(exec_module, "_snake_gymnax_wrapped", False):
            return spec  # a finder handed out the same loader object again

        def exec_then_register(module):
            exec_module(module)  # errors in gymnax itself propagate untouched; stay armed
            _uninstall()
            _register_quietly()

        exec_then_register._snake_gymnax_wrapped = True
        # Instance attribute: only this loader object (gymnax's) is wrapped.
        spec.loader.exec_module = exec_then_register
        return spec


def _find_with_others(hook, fullname, path, target):
    for finder in list(sys.meta_path):
        if finder is hook:
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _register_quietly() -> None:
    try:
        __import__(_TARGET)
    except Exception as error:  # never break `import gymnax`
        import warnings

        warnings.warn(
            f"snake_gymnax could not register Snake-v0 with gymnax: {error!r}",
            RuntimeWarning,
            stacklevel=2,
        )


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _GymnaxImportHook)]


def install() -> None:
    """Install the hook (idempotent); if gymnax is already imported, register right away."""
    if os.environ.get("SNAKE_GYMNAX_NO_AUTOLOAD"):
        return
    if _TRIGGER in sys.modules:
        _register_quietly()
        return
    if not any(isinstance(f, _GymnaxImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _GymnaxImportHook())


install()
