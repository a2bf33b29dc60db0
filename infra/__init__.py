"""Infrastructure: migrations, configs, the local stack."""
