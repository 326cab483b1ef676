"""``make e2e``: the synthesized CDK templates deployed into a local AWS emulator and driven.

:mod:`e2e.emulator` runs MiniStack, :mod:`e2e.deploy` deploys ``cdk.out`` as ``cdk deploy --all``
would, :mod:`e2e.emulator_gaps` is the one place that works around what the emulator lacks, and
:mod:`e2e.journey` drives the deployed API Gateway URLs (the same driver runs against AWS).
"""
