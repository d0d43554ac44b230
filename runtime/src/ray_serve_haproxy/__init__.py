"""ray-serve-haproxy: Ray Serve in HAProxy mode in a container (entrypoint and operator CLI)."""

__version__ = "0.1.0"
