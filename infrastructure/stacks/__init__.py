"""CDK stacks and constructs of the payment service."""
