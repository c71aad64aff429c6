"""Nested CloudFormation templates for a multi-container app on Amazon ECS with EC2 hosts."""
