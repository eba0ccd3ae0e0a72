"""The launcher's logic in process: its process graph, restart decisions
and progress line."""
import pytest

from common import records
from common import run_dir
from common.config import StrategySettings
from common.progress import Snapshot
from common.progress import StepRate
from common.progress import format_duration
from common.progress import progress_line
from deploy.graph import LaunchSettings
from deploy.graph import command_args
from deploy.graph import process_graph
from deploy.graph import start_plan
from deploy.restarts import RestartHistory
from deploy.restarts import RestartPolicy
from deploy.watch import LearnerMilestones


def test_backoff_doubles_up_to_its_cap_and_the_count_is_capped():
  history = RestartHistory(RestartPolicy(max_restarts=6, max_backoff_s=10))
  decisions = [history.on_exit(now=float(t)) for t in range(7)]
  assert [d.backoff_s for d in decisions[:6]] == [1, 2, 4, 8, 10, 10]
  assert [d.count for d in decisions[:6]] == [1, 2, 3, 4, 5, 6]
  assert decisions[6] is None  # A 7th exit within the window: give up.
  assert history.total == 6


def test_restarts_older_than_the_window_are_forgotten():
  history = RestartHistory(RestartPolicy(max_restarts=2, window_s=600))
  assert history.on_exit(now=0).count == 1
  assert history.on_exit(now=100).count == 2
  assert history.on_exit(now=500) is None
  # 0 and 100 are now more than 600 s ago: the backoff starts over.
  again = history.on_exit(now=701)
  assert (again.count, again.backoff_s) == (1, 1)
  assert history.total == 3


def test_no_restart_policy_gives_up_at_once():
  assert RestartHistory(RestartPolicy(mode='no')).on_exit(now=0) is None
  assert RestartHistory(RestartPolicy(max_restarts=0)).on_exit(now=0) is None


def test_bad_policy_is_refused():
  with pytest.raises(ValueError, match='restart mode'):
    RestartPolicy(mode='always')
  with pytest.raises(ValueError, match='max_restarts'):
    RestartPolicy(max_restarts=-1)


def test_eta_from_the_recent_rate_and_a_learner_restart_starts_it_over():
  rate = StepRate(window_s=60)
  assert rate.eta_s(1000) is None
  rate.add(0, None)  # No learner yet.
  rate.add(10, 100)
  assert rate.eta_s(1000) is None  # One point: no rate.
  rate.add(20, 300)  # 20 steps/s.
  assert rate.eta_s(1000) == pytest.approx(35)
  rate.add(200, 3900)
  rate.add(230, 4500)
  rate.add(270, 6100)
  # The rate since the last point at or before the window's start (200 s):
  # the points at 10 and 20 s are forgotten.
  assert rate.eta_s(7000) == pytest.approx(900 / (2200 / 70))
  rate.add(275, 5000)  # Restored an older checkpoint.
  assert rate.eta_s(7000) is None
  rate.add(285, 5400)
  assert rate.eta_s(7000) == pytest.approx(40)
  assert rate.eta_s(5000) == 0  # Past the target.


def test_durations_read_as_people_write_them():
  assert [format_duration(s) for s in (None, 42.4, 185, 3725)] == [
      '-', '42s', '3m05s', '1h02m']


def test_progress_line_ends_with_eta_and_restarts():
  snapshot = Snapshot(time=130.0, train_step=5000, inserts=5100,
                      replay_size=5100, replay_capacity=100000,
                      eval_step=4000, eval_return=200.0)
  line = progress_line(10.0, None, snapshot, eta_s=185, restarts=2)
  assert line == ('[   120s] train_step 5000 (0.0/s) | env steps 5100 (0.0/s) '
                  '| replay 5100/100000 | eval return 200.0 @ 4000 '
                  '| ETA 3m05s | restarts 2')


def test_graph_starts_what_the_first_train_step_needs_first():
  settings = LaunchSettings(
      flagfile='run.flags', max_train_steps=100, root_dir='/r', actors=3,
      tensorboard_port=6006,
      strategy=StrategySettings(kind='mirrored', cpu_replicas=2))
  graph = process_graph(settings)
  assert [(p.name, p.after) for p in graph] == [
      ('reverb_server', None), ('learner', None), ('actor_0', None),
      ('actor_1', records.WEIGHTS_PUSHED), ('actor_2', records.WEIGHTS_PUSHED),
      ('eval', records.FIRST_TRAIN_STEP),
      ('tensorboard', records.FIRST_TRAIN_STEP)]
  assert start_plan(graph) == (
      'Starting reverb_server, learner, actor_0; actor_1, actor_2 once the '
      'learner has pushed weights; eval, tensorboard once it trains')
  args = [command_args(p, settings, '127.0.0.3', 1234) for p in graph]
  assert '--port=1234' in args[0]
  assert '--checkpoint_dir=/r/reverb_checkpoints' in args[0]
  assert all('--reverb_address=127.0.0.3:1234' in a for a in args[1:6])
  assert not any('--reverb_address' in arg for arg in args[0] + args[6])
  assert ['--strategy=mirrored', '--cpu_replicas=2'] == [
      arg for arg in args[1] if arg.startswith(('--strategy', '--cpu_rep'))]


def test_records_are_read_whole_and_in_order(tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  writer = records.RecordWriter(str(tmp_path), records.LEARNER)
  path = run_dir.records_path(str(tmp_path), records.LEARNER)
  reader = records.RecordReader(path)
  assert reader.new() == []  # No file yet.
  writer.write(records.WEIGHTS_PUSHED, train_step=np.int64(0))
  with open(path, 'a') as f:
    f.write('{"event": "progress", "time": 1.0, "train_')  # Being written.
  [pushed] = reader.new()
  assert (pushed.event, pushed['train_step']) == (records.WEIGHTS_PUSHED, 0)
  assert reader.new() == []  # The partial line waits for its end.
  with open(path, 'a') as f:
    f.write('step": 5}\n')
  [progress] = reader.new()
  assert progress.values == {'train_step': 5}
  assert [r.event for r in records.read(path)] == [records.WEIGHTS_PUSHED,
                                                   records.PROGRESS]
  assert len(records.read(path, records.PROGRESS)) == 1


def test_the_staged_start_counts_only_milestones_of_this_launch(tmp_path):
  root = str(tmp_path)
  learner = records.RecordWriter(root, records.LEARNER)
  learner.write(records.WEIGHTS_PUSHED, train_step=0)  # An earlier launch's.
  learner.write(records.FIRST_TRAIN_STEP, train_step=1)
  milestones = LearnerMilestones(root)
  assert not milestones.reached(records.WEIGHTS_PUSHED)
  learner.write(records.WEIGHTS_PUSHED, train_step=500)  # A restart's.
  assert milestones.reached(records.WEIGHTS_PUSHED)
  assert not milestones.reached(records.FIRST_TRAIN_STEP)
  learner.write(records.FIRST_TRAIN_STEP, train_step=501)
  assert milestones.reached(records.FIRST_TRAIN_STEP)
  assert milestones.reached(records.WEIGHTS_PUSHED)  # Reached stays reached.
