"""Importing modules that register trainers/datasets: whole folders, dotted names or file paths."""
import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys

from .errors import InputError


class PluginImportError(InputError, ImportError):
    """A plugin module failed to import; the message names it and the original error."""


def _import_dotted(module_name, origin):
    try:
        return importlib.import_module(module_name)
    except PluginImportError:
        raise
    except Exception as exc:
        raise PluginImportError(f"Could not import {module_name} ({origin}): {type(exc).__name__}: {exc}") from exc


def _dotted_name_under_sys_path(path):
    """`a.b.c` if `path` (a .py file) lies under a sys.path entry through importable folders, else None."""
    path = os.path.abspath(path)
    for entry in sys.path:
        entry = os.path.abspath(entry or os.getcwd())
        if os.path.commonpath([entry, path]) != entry:
            continue
        parts = os.path.relpath(os.path.splitext(path)[0], entry).split(os.sep)
        if all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def import_module_or_file(target):
    """Import a dotted module name or a .py file path (each at most once per process)."""
    if not (target.endswith(".py") or os.sep in target or os.path.exists(target)):
        return _import_dotted(target, "from --import")
    if not os.path.isfile(target):
        raise PluginImportError(f"--import {target}: no such file")
    dotted = _dotted_name_under_sys_path(target)
    if dotted is not None:
        return _import_dotted(dotted, target)
    path = os.path.abspath(target)
    name = f"_plugin_{os.path.splitext(os.path.basename(path))[0]}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginImportError(f"Could not import {path}: {type(exc).__name__}: {exc}") from exc
    return module


def import_folder_modules(folder):
    """Import every top-level module and package of `folder` as `<folder name>.<module>`.

    The folder's parent must be on sys.path (train.py puts the repository
    first). Names starting with `_` are skipped. Returns the module names.
    """
    folder = os.path.abspath(folder)
    package = os.path.basename(folder)
    parent = os.path.dirname(folder)
    if parent not in (os.path.abspath(p or os.getcwd()) for p in sys.path):
        sys.path.insert(0, parent)
    package_module = _import_dotted(package, folder)
    paths = [os.path.abspath(p) for p in getattr(package_module, "__path__", [])]
    if folder not in paths:
        raise PluginImportError(
            f"'import {package}' resolves to {paths or package_module.__file__}, not to {folder}: another installed "
            f"package named '{package}' shadows the repository folder. Run from the repository (train.py puts it "
            "first on sys.path) or uninstall the other package."
        )
    names = []
    for info in sorted(pkgutil.iter_modules([folder]), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        name = f"{package}.{info.name}"
        _import_dotted(name, os.path.join(folder, info.name))
        names.append(name)
    return names
