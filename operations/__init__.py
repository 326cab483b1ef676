"""Operator tooling for the payment service (``payments-dr``); never deployed to Lambda."""
