"""What every command checks before it makes, uploads, clones or builds anything.

Each check fails with one sentence (InputError, exit 2) and nothing made:

- `region`: REGION is a region of an AWS partition, by botocore's own endpoint data (the list the
  SDK resolves endpoints from), so a typo never reaches the point where a bucket is made in it.
- `reach`: the endpoint answers and the credentials work, by one STS GetCallerIdentity with one
  connection attempt of CONNECT seconds (a throttled or 5xx answer is retried like any call):
  botocore retries a connection error with backoff for 20-35 s, the right answer to a blip during
  a deploy and the wrong one to an endpoint that is not there.
  https://docs.aws.amazon.com/boto3/latest/guide/retries.html
  https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
- `constraints`: every root parameter value satisfies its declaration (AllowedValues, MinValue /
  MaxValue, AllowedPattern, MinLength / MaxLength), which CloudFormation checks only when it is
  given the values, at CreateChangeSet: after the bucket, the registry stack and the images.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
  The root's Rules are checked beside it (rules.py).
- `images`: when deploy will build or copy images, every source is there (its directory, or its
  clone), and on a first deploy Docker answers (`docker info`), said before any source is cloned.
"""
from __future__ import annotations

import difflib
import re

from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, ReadTimeoutError)
from botocore.parsers import ResponseParserError

from lifecycle.aws import InputError, LifecycleError, Target, connect_attempts, unreachable

CONNECT = 3  # seconds: a local endpoint answers at once, AWS within a second
# One connection attempt (connect_attempts): this call asks whether anything answers. A throttled
# or 5xx answer is an answer, retried as every call is.
ASK = Config(connect_timeout=CONNECT, read_timeout=15, retries={"mode": "standard", "max_attempts": 10})


def regions(session) -> dict[str, str]:
    """Every region botocore knows CloudFormation in (every stack here needs it) -> its partition."""
    return {region: partition for partition in session.get_available_partitions()
            for region in session.get_available_regions("cloudformation", partition)}


def region(target: Target) -> None:
    known = regions(target.session)
    if target.region in known:
        return
    close = difflib.get_close_matches(target.region, list(known), n=1)
    raise InputError(f"REGION={target.region} is not a region of any AWS partition botocore knows"
                     + (f" (did you mean {close[0]}?)" if close else "")
                     + "; a region opened after this botocore was released needs a newer boto3")


def reach(target: Target) -> None:
    """The endpoint answers and the credentials are accepted; remembers the account."""
    sts = connect_attempts(target.session.client("sts", config=ASK), 1)
    try:
        identity = sts.get_caller_identity()
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        raise InputError(unreachable(getattr(error, "kwargs", {}).get("endpoint_url") or sts.meta.endpoint_url)) \
            from None
    except ReadTimeoutError:
        raise InputError(f"{sts.meta.endpoint_url} took the connection but did not answer within 15 s") from None
    except NoCredentialsError:
        raise InputError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") \
            from None
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise InputError(f"the AWS credentials were refused ({detail.get('Code')}: {detail.get('Message')}); "
                         "check AWS_PROFILE or renew them") from None
    except (BotoCoreError, ResponseParserError) as error:  # an answer, not AWS's (a proxy, another server)
        raise InputError(f"{sts.meta.endpoint_url} answered, but not as AWS does ({str(error).splitlines()[0]}); "
                         "check AWS_ENDPOINT_URL") from None
    target.__dict__["account"] = identity["Account"]  # Target.account's cached value


def constraints(template: dict, values: dict[str, str]) -> str | None:
    """The first parameter value its declaration refuses, said as CloudFormation would, or None."""
    for name, declared in (template.get("Parameters") or {}).items():
        if name not in values:
            continue
        problem = _refused(declared, values[name])
        if problem:
            why = declared.get("ConstraintDescription")
            return f"{name}={values[name]} {problem}" + (f" ({why})" if why else "")
    return None


def _refused(declared: dict, value: str) -> str | None:
    kind = str(declared.get("Type", "String"))
    members = [v.strip() for v in value.split(",")] if kind.startswith(("List<", "CommaDelimited")) else [value]
    allowed = [str(v) for v in declared.get("AllowedValues") or []]
    for member in members:
        if allowed and member not in allowed:
            shown = ", ".join(allowed[:8]) + (f", ... ({len(allowed)} in all)" if len(allowed) > 8 else "")
            return f"is not one of the template's AllowedValues: {shown}"
        if "Number" in kind:
            try:
                number = float(member)
            except ValueError:
                return "is not a number"
            if "MinValue" in declared and number < float(declared["MinValue"]):
                return f"is below the template's MinValue {declared['MinValue']}"
            if "MaxValue" in declared and number > float(declared["MaxValue"]):
                return f"is above the template's MaxValue {declared['MaxValue']}"
            continue
        if "MinLength" in declared and len(member) < int(declared["MinLength"]):
            return f"is shorter than the template's MinLength {declared['MinLength']}"
        if "MaxLength" in declared and len(member) > int(declared["MaxLength"]):
            return f"is longer than the template's MaxLength {declared['MaxLength']}"
        # The pattern must match the whole value (CloudFormation's patterns are Java regular
        # expressions; those in these templates read the same in Python's re).
        if "AllowedPattern" in declared and not re.fullmatch(declared["AllowedPattern"], member):
            return f"does not match the template's AllowedPattern {declared['AllowedPattern']}"
    return None


def images(app, first: bool) -> None:
    """Before a deploy that builds: on a first deploy (`first`: no registry or root yet, so every image
    is still to be copied or built), that Docker answers, said before any source is cloned; then, on
    any deploy, every source (a later deploy whose images are all in ECR asks nothing of Docker)."""
    from lifecycle import images as building
    from templates_src.app import mirror

    if not app.repositories and not mirror.copies(app):
        return
    if first:
        try:
            building.docker_ready()
        except LifecycleError as error:  # said as refused input here: nothing is made yet
            raise InputError(str(error).replace("nothing was built or pushed", "nothing was made")) from None
    for repository in app.repositories:
        try:
            building.source(app, repository)
        except InputError:
            raise
        except LifecycleError as error:
            raise InputError(f"{repository}: its source is not available ({error}); nothing was made. Set "
                             f"{building.source_variable(repository)}=<checkout>, or SKIP_IMAGES=1 with images "
                             "already pushed") from None
