"""The CDK CLI's entry point (``cdk.json``): both regions' stacks, built by :mod:`stacks.application`."""

from stacks.application import build_app

if __name__ == "__main__":
    build_app().synth()
