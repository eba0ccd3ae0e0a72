"""What the benchmarks share: the flags of the alternating-rounds loop, that
loop, a benchmark function run in a fresh child process, a launcher job run
to its end, and the records the job's processes wrote (common/records.py;
never their logs).

A benchmark defines only the flags it uses, with its own defaults:

    _ROUNDS = measure.define_rounds(3)
    _SECONDS = measure.define_seconds(5)

Imports nothing heavy.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence
from typing import TypeVar

from absl import flags

from common import records
from common import run_dir

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Variant = TypeVar('Variant', bound=Hashable)


# The flags several benchmarks define (each its default and help).

def define_rounds(default: int, help_text: str = 'Alternating rounds.'):
  return flags.DEFINE_integer('rounds', default, help_text)


def define_seconds(default: float,
                   help_text: str = 'Length of one measurement.'):
  return flags.DEFINE_float('seconds', default, help_text)


def define_root_dir(default: str, help_text: str = 'Runs go here.'):
  return flags.DEFINE_string('root_dir', default, help_text)


def define_experiments(default: Sequence[str],
                       help_text: str = 'configs/<name>.flags.'):
  return flags.DEFINE_list('experiments', list(default), help_text)


def define_child():
  """The hidden flag of a benchmark that re-runs itself (in_child)."""
  return flags.DEFINE_string(
      'child', None, 'Internal: run the benchmark\'s child function on these '
      'JSON arguments and print its result as one JSON line.')


# The loop.

def alternate(variants: Sequence[Variant], rounds: int,
              measure_one: Callable[[Variant, int], Any],
              report: Optional[Callable[[Variant, int, Any], None]] = None
              ) -> Dict[Variant, List[Any]]:
  """Measures every variant once per round, in turn (noise hits all alike):
  `measure_one(variant, round_index)`. Each variant's results, in round
  order; `report(variant, round_index, result)` is called after each."""
  results = {variant: [] for variant in variants}
  for round_index in range(rounds):
    for variant in variants:
      results[variant].append(measure_one(variant, round_index))
      if report:
        report(variant, round_index, results[variant][-1])
  return results


def medians(results: Dict[Variant, List[float]]) -> Dict[Variant, float]:
  """Each variant's median (of numbers)."""
  return {variant: statistics.median(values)
          for variant, values in results.items()}


# A benchmark function in a fresh child process: the benchmark re-runs
# itself with --child (define_child), its main starts with
#   if measure.run_child(_CHILD, function): return

def child_command(module: str, args: Sequence[Any],
                  flag_args: Sequence[str] = ()) -> List[str]:
  """The command that runs `module`'s child function on `args` (JSON
  values) with its flags `flag_args`."""
  return [sys.executable, '-m', module, f'--child={json.dumps(list(args))}',
          *flag_args]


def in_child(module: str, args: Sequence[Any],
             flag_args: Sequence[str] = ()) -> Any:
  """Runs child_command(...) to its end; the result its child function
  returned (raises with the end of its stderr if it fails)."""
  result = subprocess.run(child_command(module, args, flag_args),
                          cwd=PROJECT_ROOT, capture_output=True, text=True,
                          check=False)
  if result.returncode:
    raise RuntimeError(f'{module} {args} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def run_child(child, function: Callable[..., Any]) -> bool:
  """In a child (the `child` flag set): prints `function(*args)` as the
  last line of stdout and returns True; in the parent, False."""
  if child.value is None:
    return False
  print(json.dumps(function(*json.loads(child.value))), flush=True)
  return True


# A launcher job and its records.

def learner_records(root_dir: str) -> List[records.Record]:
  """Every record the learner of the run in `root_dir` wrote."""
  return records.read(run_dir.records_path(root_dir, records.LEARNER))


def launcher_records(root_dir: str,
                     event: Optional[str] = None) -> List[records.Record]:
  """The launcher's records (of one `event`, when given)."""
  return records.read(run_dir.records_path(root_dir, records.LAUNCHER),
                      event)


def progress_with(learner: List[records.Record],
                  name: str) -> List[records.Record]:
  """The learner's progress records that hold value `name` (the rates are
  missing from those written while the server did not answer; an
  algorithm's counters from other algorithms' records)."""
  return [r for r in learner
          if r.event == records.PROGRESS and name in r.values]


def last_value(learner: List[records.Record], name: str):
  """Value `name` as the learner last recorded it (progress or finished),
  or None."""
  holding = [r for r in learner
             if r.event in (records.PROGRESS, records.FINISHED)
             and name in r.values]
  return holding[-1][name] if holding else None


def children_of(pid: int) -> Dict[str, int]:
  """The launcher's live children by name (actor_N, eval, learner, ...)."""
  found = {}
  for task in os.listdir(f'/proc/{pid}/task'):
    try:
      with open(f'/proc/{pid}/task/{task}/children') as f:
        pids = [int(p) for p in f.read().split()]
    except OSError:
      continue
    for child in pids:
      try:
        with open(f'/proc/{child}/cmdline', 'rb') as f:
          args = f.read().decode().split('\0')
      except OSError:
        continue
      module = args[args.index('-m') + 1] if '-m' in args else ''
      if module == 'actor':
        tasks = [a.split('=')[1] for a in args if a.startswith('--task=')]
        name = 'eval' if '--mode=eval' in args else f'actor_{tasks[0]}'
      else:
        name = module
      found[name] = child
  return found


def run_launcher(root_dir: str, flag_args: Sequence[str],
                 fresh: bool = True) -> List[records.Record]:
  """Runs `python -m deploy.launch_local <flag_args> --root_dir=root_dir`
  to its end (its output in root_dir/launcher.out; raises if it fails);
  the learner's records. `fresh`: removes root_dir first."""
  if fresh:
    shutil.rmtree(root_dir, ignore_errors=True)
  os.makedirs(root_dir, exist_ok=True)
  command = [sys.executable, '-m', 'deploy.launch_local', *flag_args,
             f'--root_dir={root_dir}']
  with open(os.path.join(root_dir, 'launcher.out'), 'w') as out:
    subprocess.run(command, cwd=PROJECT_ROOT, stdout=out,
                   stderr=subprocess.STDOUT, check=True)
  return learner_records(root_dir)
