"""The Reverb server process: replay table + variable container."""
