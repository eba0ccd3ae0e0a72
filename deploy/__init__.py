"""Ways to run the topology: local processes, docker compose, Kubernetes."""
