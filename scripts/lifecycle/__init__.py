"""The lifecycle a user runs: deploy, images, verify, status, cleanup (see `make help`).

Every command talks to AWS through boto3 only, so AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL
(the local emulator) apply to all of them alike.
"""
