"""The actor process: collects experience into Reverb, or evaluates."""
