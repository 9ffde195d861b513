"""AI features: a pluggable model provider, token quotas per tenant and period, a cached catalog summary."""
