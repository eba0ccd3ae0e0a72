"""The benchmarks' output: a markdown table, as BENCHMARKS.md shows it."""
from typing import Iterable, Sequence


def print_table(header: Sequence[str], rows: Iterable[Sequence]) -> None:
  """The first column left-aligned, the others right-aligned."""
  print('\n| ' + ' | '.join(header) + ' |')
  print('| --- ' + '| ---: ' * (len(header) - 1) + '|')
  for row in rows:
    print('| ' + ' | '.join(str(cell) for cell in row) + ' |', flush=True)
