"""moto's server itself: which service a request's host names, which account its key belongs to, which
actions a response class answers.

For every request, moto 5.2.5:
- DomainDispatcherApplication.get_backend_for_host lists moto's package directory and asks, entry by entry,
  whether it is a folder (moto.backends.list_of_moto_modules): about 150 file-system calls per request, a
  twelfth of the emulator's time in a deploy. The package does not change while the server runs, so the list
  is made once.
- BaseResponse.get_current_account looks the access key up in the IAM backend of every partition of every
  account (moto.iam.models.get_account_id_from), and looking a backend up makes it: after each reset, the
  first request built six IAM backends (aws, aws-cn, aws-us-gov...) with their 1,582 AWS managed policies
  each, where a deploy uses one. A key lives only in a backend that was made, so only those are searched:
  the same answer, and a reset plus the first requests of a test that uses IAM take 25 ms instead of 141 ms.
- BaseResponse.call_action lists the response class's functions (inspect.getmembers) to see whether it
  answers the action. A class's functions do not change while the server runs: listed once per class.
"""
from __future__ import annotations

import functools

from moto import backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core import responses
from moto.iam import models as iam

_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES


def _account_of(access_key: str) -> str:
    for account_id, account in list(iam.iam_backends.items()):
        # dict.values: the partitions' backends made so far, without making the others
        if any(access_key in backend.access_keys for backend in list(dict.values(account))):
            return account_id
    return DEFAULT_ACCOUNT_ID


iam.get_account_id_from = _account_of  # responses imports it from the module on each call
responses.method_names_from_class = functools.cache(responses.method_names_from_class)
