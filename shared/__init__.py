"""The thin library every process of the platform uses."""
