"""Code shared by every process: configs, envs, agents, specs, Reverb helpers."""
