"""moto's server itself: which service a request's host names.

For every request, moto 5.2.5's DomainDispatcherApplication.get_backend_for_host lists moto's package
directory and asks, entry by entry, whether it is a folder (moto.backends.list_of_moto_modules): about
150 file-system calls per request, a twelfth of the emulator's time in a deploy. The package does not
change while the server runs, so the list is made once.
"""
from __future__ import annotations

from moto import backends

_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES
