"""Faults a scenario injects (`faults:`).

Every module in this package is imported here, so adding one is adding one file: a class
decorated with `@fault` registers itself in the table the loader reads.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
