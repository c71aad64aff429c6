"""MinSize <= MaxSize is refused by the root template's Rules, at create time, by CloudFormation's own
evaluation: every pair the parameters allow, decided exactly, with one sentence naming MinSize."""
from __future__ import annotations

import sys

import pytest

import stacks
from helpers import ROOT, app_from, dks_data, templates
from templates_src.app import config
from test_emulated_deploy import BUCKET, PREFIX

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import rules  # noqa: E402


def bounds(main: dict) -> tuple[range, range]:
    low, high = main["Parameters"]["MinSize"], main["Parameters"]["MaxSize"]
    return (range(int(low["MinValue"]), int(low["MaxValue"]) + 1),
            range(int(high["MinValue"]), int(high["MaxValue"]) + 1))


@pytest.mark.parametrize("max_size", [3, 40])
def test_every_pair_the_parameters_allow_is_decided_exactly(max_size):
    data = dks_data()
    data["cluster"]["max_size"] = max_size
    main = templates(app_from(data))["main.yaml"]
    lows, highs = bounds(main)
    assert lows.stop - 1 == config.MIN_SIZE_MAX
    for low in lows:
        for high in highs:
            refused = rules.refusal(main, {"MinSize": str(low), "MaxSize": str(high)})
            if low <= high:
                assert refused is None, (low, high)
            else:
                assert refused == f"MinSize {low} needs MaxSize of at least {low}: raise MaxSize or lower MinSize"


def test_cloudformation_refuses_the_pair_before_creating_anything(aws):
    stacks.upload(aws, BUCKET, PREFIX)
    cfn = aws.client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        cfn.create_stack(StackName="dks", TemplateURL=stacks.template_url(aws, BUCKET, PREFIX + "main.yaml"),
                         Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=[
                             {"ParameterKey": k, "ParameterValue": v} for k, v in {
                                 "QSS3BucketName": BUCKET, "QSS3KeyPrefix": PREFIX, "MinSize": "4",
                                 "MaxSize": "3"}.items()])
    assert "MinSize 4 needs MaxSize of at least 4" in str(refused.value)
    assert cfn.list_stacks()["StackSummaries"] == []
