"""One definition per setting: a dataclass field with its default and help
text, from which its command-line flag is made (the flag is named after the
field unless the field says otherwise)."""
import dataclasses
import math
import sys
import typing
from typing import Any, Dict, List, Optional, Sequence

from absl import flags

from common.errors import ConfigError


def setting(default: Any = None, *, help: str,  # pylint: disable=redefined-builtin
            flag: Optional[str] = None, enum: Optional[Sequence[str]] = None,
            unset: Optional[str] = None, required: bool = False,
            lower_bound: Optional[float] = None,
            upper_bound: Optional[float] = None):
  """A dataclass field that is also a flag.

  Args:
    default: the field's default (and the flag's, unless `unset` is given).
    help: the flag's help text.
    flag: the flag's name, if not the field's.
    enum: the values the flag accepts.
    unset: what leaving the flag unset means; the flag then defaults to None
      and the field is left to the dataclass to fill in.
    required: the flag must be given.
    lower_bound, upper_bound: the range of values the flag accepts.
  """
  return dataclasses.field(default=default, metadata={
      'help': help, 'flag': flag, 'enum': enum, 'unset': unset,
      'required': required, 'lower_bound': lower_bound,
      'upper_bound': upper_bound})


def _settings(cls) -> List[dataclasses.Field]:
  return [f for f in dataclasses.fields(cls) if 'help' in f.metadata]


def flag_name(field: dataclasses.Field) -> str:
  return field.metadata['flag'] or field.name


def _value_type(cls, field: dataclasses.Field) -> type:
  """int, float, str, bool or tuple (for Tuple[int, ...]), Optional removed."""
  hint = typing.get_type_hints(cls)[field.name]
  args = [a for a in typing.get_args(hint) if a is not type(None)]
  if typing.get_origin(hint) is typing.Union and len(args) == 1:
    hint = args[0]
  return typing.get_origin(hint) or hint


def define_flags(cls, fv: flags.FlagValues = flags.FLAGS,
                 module_name: Optional[str] = None) -> List[str]:
  """Defines a flag for each setting of the dataclass `cls`; their names.

  `module_name`: the module the flags belong to (a main passes `__name__`,
  so that --helpshort lists them).
  """
  names = []
  if module_name == '__main__':
    module_name = sys.argv[0]  # How absl names the main module.
  owner = {'module_name': module_name} if module_name else {}
  for field in _settings(cls):
    meta, name = field.metadata, flag_name(field)
    default = None if meta['unset'] else field.default
    help_text = meta['help'] + (f' (unset: {meta["unset"]})'
                                if meta['unset'] else '')
    kind = _value_type(cls, field)
    bounds = {bound: meta[bound] for bound in ('lower_bound', 'upper_bound')
              if meta[bound] is not None}
    if meta['enum']:
      flags.DEFINE_enum(name, default, meta['enum'], help_text,
                        flag_values=fv, **owner)
    elif kind is bool:
      flags.DEFINE_boolean(name, default, help_text, flag_values=fv, **owner)
    elif kind is int:
      flags.DEFINE_integer(name, default, help_text, flag_values=fv,
                            **bounds, **owner)
    elif kind is float:
      flags.DEFINE_float(name, default, help_text, flag_values=fv,
                          **bounds, **owner)
      # nan passes any bounds and every comparison with it is False.
      flags.register_validator(name, lambda v: v is None or not math.isnan(v),
                               'must be a number, not nan', flag_values=fv)
    elif kind is tuple:
      flags.DEFINE_list(name, None if default is None else
                        [str(v) for v in default], help_text, flag_values=fv,
                        **owner)
    else:
      flags.DEFINE_string(name, default, help_text, flag_values=fv, **owner)
    if meta['required']:
      flags.mark_flag_as_required(name, fv)
    names.append(name)
  return names


def from_flags(cls, fv: flags.FlagValues = flags.FLAGS, **fields):
  """An instance of the dataclass `cls` with the values of its flags, and
  `fields` (its fields that are not flags, or values checked or derived
  from a flag's)."""
  return cls(**{**_values_from_flags(cls, fv), **fields})


def _values_from_flags(cls, fv: flags.FlagValues) -> Dict[str, Any]:
  """The settings of `cls` whose flags are set, by field name, as the
  fields' types (comma-separated lists become tuples of ints)."""
  values = {}
  for field in _settings(cls):
    name = flag_name(field)
    value = fv[name].value
    if value is None:
      continue
    if _value_type(cls, field) is tuple:
      try:
        value = tuple(int(v) for v in value)
      except ValueError as e:
        raise ConfigError(f'--{name} must be comma-separated integers, got '
                           f'{value}') from e
    values[field.name] = value
  return values
