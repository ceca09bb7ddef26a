"""Name -> class registries: trainers and datasets register themselves on import."""
from .errors import InputError
from .hints import closest_name_hint


class RegistryKeyError(InputError, KeyError):
    """A KeyError whose message prints as written (KeyError quotes its message)."""

    def __str__(self):
        return str(self.args[0])


class Registry:
    """Maps names to objects; `register()` is a decorator keyed by `__name__`."""

    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj, force=False):
        previous = self._obj_map.get(name)
        if previous is not None and previous is not obj and not force:
            raise RegistryKeyError(
                f'An object named "{name}" was already registered in the "{self._name}" registry '
                f"(by {getattr(previous, '__module__', '?')}); rename one of them or register with force=True"
            )
        self._obj_map[name] = obj

    def register(self, obj=None, force=False):
        """Register `obj`, or return a decorator that registers what it decorates."""
        if obj is None:

            def decorator(fn_or_class):
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class

            return decorator
        self._do_register(obj.__name__, obj, force=force)
        return obj

    def get(self, name):
        if name not in self._obj_map:
            raise RegistryKeyError(
                f'"{name}" is not in the "{self._name}" registry.{closest_name_hint(name, self._obj_map)} '
                f"Registered: {sorted(self._obj_map)}. Is the module that defines it imported "
                "(train.py imports trainers/ and datasets/, add others with --import MODULE)?"
            )
        return self._obj_map[name]

    def registered_names(self):
        return list(self._obj_map)

    def __contains__(self, name):
        return name in self._obj_map
