"""The base of every error that means "the input is wrong"."""


class UserError(Exception):
  """Reported by the binaries as one line and exit code 2, no traceback.

  Subclasses also derive from the built-in error that fits (ValueError,
  ConnectionError, ...), so callers can catch either.
  """


class ConfigError(UserError, ValueError):
  """A configuration value is out of range, inconsistent or unreadable."""
