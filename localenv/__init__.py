"""The local environment: the payment service on an embedded local AWS (moto) on loopback."""
