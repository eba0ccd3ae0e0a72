"""Looking at a job: plots, policy videos, a status screen."""
