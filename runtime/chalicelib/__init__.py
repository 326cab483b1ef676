"""Payment domain and AWS adapters for the payment API (shipped with the Chalice app)."""
