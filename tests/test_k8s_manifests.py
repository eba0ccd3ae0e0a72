"""The Kubernetes manifests in deploy/k8s: schema-valid and wired as intended.

Offline: kubernetes-validate ships the API's JSON schemas; no cluster needed.
"""
import glob
import json
import os

import kubernetes_validate
import pytest
import yaml

from deploy.graph import LaunchSettings
from deploy.graph import process_graph
from tests.helpers import PROJECT_ROOT

_K8S_DIR = os.path.join(PROJECT_ROOT, 'deploy', 'k8s')
_K8S_VERSION = '1.30.0'  # One whose schemas kubernetes-validate ships.
_CONFIG_FLAG = '--flagfile=/config/experiment.flags'
_PART_OF = {'app.kubernetes.io/part-of': 'rl-actor-learner'}


def _load(filename):
  with open(os.path.join(_K8S_DIR, filename)) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]


_FILES = sorted(os.path.basename(p)
                for p in glob.glob(os.path.join(_K8S_DIR, '*.yaml')))
_OBJECTS = [(filename, doc) for filename in _FILES
            if filename != 'kustomization.yaml' for doc in _load(filename)]


def _pods(kind=None, name=None):
  """(filename, object, pod spec) of the Deployments and StatefulSets."""
  return [(filename, obj, obj['spec']['template']['spec'])
          for filename, obj in _OBJECTS
          if obj['kind'] in ('Deployment', 'StatefulSet')
          and kind in (None, obj['kind'])
          and name in (None, obj['metadata']['name'])]


@pytest.mark.parametrize('obj', [
    pytest.param(obj, id=f"{filename}:{obj['kind']}/{obj['metadata']['name']}")
    for filename, obj in _OBJECTS])
def test_schema_valid(obj):
  error = None
  try:
    kubernetes_validate.validate(obj, _K8S_VERSION, strict=True)
  except kubernetes_validate.ValidationError as e:
    error = f"{'.'.join(map(str, e.path))}: {e.message}"
  except kubernetes_validate.SchemaNotFoundError as e:
    error = e.message
  if error:
    pytest.fail(error, pytrace=False)
  labels = obj['metadata']['labels']
  assert labels.items() >= _PART_OF.items()
  assert 'app.kubernetes.io/component' in labels


def test_experiment_processes_read_the_configmap():
  pods = [p for p in _pods() if p[1]['metadata']['name'] != 'tensorboard']
  assert len(pods) == 5  # reverb-server, learner (CPU, GPU), actor, eval.
  for filename, _, pod in pods:
    volumes = {v['name'] for v in pod['volumes']
               if v.get('configMap', {}).get('name') == 'rl-experiment'}
    for container in pod['containers']:
      assert _CONFIG_FLAG in container['args'], filename
      assert any(m['name'] in volumes and m['mountPath'] == '/config'
                 for m in container['volumeMounts']), filename


def test_actors_take_their_task_from_the_hostname():
  ((_, _, pod),) = _pods('Deployment', 'actor')
  assert '--task_from_hostname' in pod['containers'][0]['args']


def test_only_the_project_reaches_reverb():
  (policy,) = [o for _, o in _OBJECTS if o['kind'] == 'NetworkPolicy']
  ((_, server, _),) = _pods('StatefulSet', 'reverb-server')
  selector = policy['spec']['podSelector']['matchLabels']
  assert server['spec']['template']['metadata']['labels'].items() >= (
      selector.items())
  assert selector['app.kubernetes.io/component'] == 'reverb-server'
  (rule,) = policy['spec']['ingress']
  assert rule['from'] == [{'podSelector': {'matchLabels': _PART_OF}}]
  assert rule['ports'] == [{'protocol': 'TCP', 'port': 8000}]


def test_kustomization_lists_the_cpu_topology():
  (kustomization,) = _load('kustomization.yaml')
  expected = set(_FILES) - {'kustomization.yaml', 'learner-gpu.yaml'}
  assert sorted(kustomization['resources']) == sorted(expected)


def _process_kind(command):
  """What a command runs: the module (or program), and eval for eval actors."""
  program = command[command.index('-m') + 1] if '-m' in command else command[0]
  program = program.replace('tensorboard.main', 'tensorboard')
  return program + (' --mode=eval' if '--mode=eval' in command else '')


def test_kubernetes_and_compose_run_the_processes_of_the_local_graph():
  settings = LaunchSettings(flagfile='run.flags', root_dir='/results',
                            max_train_steps=1, tensorboard_port=6006)
  local = {_process_kind(['-m', spec.module, *spec.args])
           for spec in process_graph(settings)}
  assert local == {'reverb_server', 'learner', 'actor', 'actor --mode=eval',
                   'tensorboard'}
  kubernetes = {_process_kind(container['command'] + container.get('args', []))
                for _, _, pod in _pods() for container in pod['containers']}
  with open(os.path.join(PROJECT_ROOT, 'docker-compose.yml')) as f:
    services = yaml.safe_load(f)['services']
  compose = {_process_kind(service['command'])
             for service in services.values()}
  assert kubernetes == local
  assert compose == local


# KubeRay (deploy/kuberay): the RayCluster is a custom resource, whose schema
# kubernetes-validate does not ship; its pod templates, the launcher Job and
# the NetworkPolicy are validated against the Kubernetes schemas, and the
# RayCluster's wiring against deploy.launch_ray below.
_KUBERAY_DIR = os.path.join(PROJECT_ROOT, 'deploy', 'kuberay')


def _kuberay(filename):
  with open(os.path.join(_KUBERAY_DIR, filename)) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]


def _ray_groups():
  """(group name, rayStartParams, pod template) of the RayCluster."""
  (cluster,) = _kuberay('raycluster.yaml')
  assert (cluster['apiVersion'], cluster['kind']) == ('ray.io/v1',
                                                      'RayCluster')
  spec = cluster['spec']
  return [('head', spec['headGroupSpec']['rayStartParams'],
           spec['headGroupSpec']['template'])] + [
               (group['groupName'], group['rayStartParams'], group['template'])
               for group in spec['workerGroupSpecs']]


def _validate(obj):
  try:
    kubernetes_validate.validate(obj, _K8S_VERSION, strict=True)
  except kubernetes_validate.ValidationError as e:
    pytest.fail(f"{'.'.join(map(str, e.path))}: {e.message}", pytrace=False)


def test_kuberay_pods_job_and_policy_are_schema_valid():
  for name, _, template in _ray_groups():
    _validate({'apiVersion': 'v1', 'kind': 'PodTemplate',
               'metadata': {'name': name}, 'template': template})
  (job,) = _kuberay('launcher-job.yaml')
  (policy,) = _kuberay('networkpolicy.yaml')
  for obj in (job, policy):
    _validate(obj)
    assert obj['metadata']['labels'].items() >= _PART_OF.items()


def test_kuberay_groups_offer_the_launchers_placement_resources():
  from deploy.ray_children import RayPlacement  # pylint: disable=g-import-not-at-top
  defaults = RayPlacement()
  offered = {}
  for name, params, _ in _ray_groups():
    # KubeRay hands the value to `ray start --resources=...` through a
    # shell: a JSON object inside quotes.
    resources = json.loads(json.loads(params['resources'])) if (
        'resources' in params) else {}
    offered[name] = resources
    assert params['num-cpus'] == '0'  # Placement is by resources only.
  assert offered['head'] == {}  # Eval may run anywhere, here included.
  assert offered['replay'] == {defaults.replay_resource: 1}
  assert offered['learner'] == {defaults.learner_resource: 1}
  assert list(offered['collector']) == [defaults.collector_resource]


def test_kuberay_pods_share_the_token_experiment_and_results():
  (job,) = _kuberay('launcher-job.yaml')
  pods = [template['spec'] for _, _, template in _ray_groups()]
  for pod in [*pods, job['spec']['template']['spec']]:
    assert pod['securityContext']['runAsNonRoot']
    volumes = {v['name']: v for v in pod['volumes']}
    assert volumes['config']['configMap']['name'] == 'rl-experiment'
    assert volumes['results']['persistentVolumeClaim']['claimName'] == (
        'rl-results')
    (container,) = pod['containers']
    assert {(m['name'], m['mountPath']) for m in container['volumeMounts']} == {
        ('config', '/config'), ('results', '/results')}
    env = {e['name']: e for e in container['env']}
    assert env['RAY_AUTH_MODE']['value'] == 'token'
    assert env['RAY_AUTH_TOKEN']['valueFrom']['secretKeyRef'] == {
        'name': 'rl-ray-token', 'key': 'token'}
  for _, _, template in _ray_groups():
    assert template['metadata']['labels'].items() >= _PART_OF.items()


def test_kuberay_launcher_dials_the_head_service_with_the_experiment():
  (cluster,) = _kuberay('raycluster.yaml')
  (job,) = _kuberay('launcher-job.yaml')
  (container,) = job['spec']['template']['spec']['containers']
  assert container['command'] == ['python', '-m', 'deploy.launch_ray']
  # KubeRay names the head's Service <cluster>-head-svc; Ray's port 6379.
  assert (f"--address={cluster['metadata']['name']}-head-svc:6379"
          in container['args'])
  assert _CONFIG_FLAG in container['args']
  assert '--root_dir=/results' in container['args']


def test_kuberay_policy_admits_only_the_project_to_the_ray_pods():
  (cluster,) = _kuberay('raycluster.yaml')
  (policy,) = _kuberay('networkpolicy.yaml')
  assert policy['spec']['podSelector']['matchLabels'] == {
      'ray.io/cluster': cluster['metadata']['name']}
  (rule,) = policy['spec']['ingress']
  assert rule == {'from': [{'podSelector': {'matchLabels': _PART_OF}}]}
  (kustomization,) = _kuberay('kustomization.yaml')
  assert sorted(kustomization['resources']) == sorted(
      os.path.basename(p) for p in glob.glob(os.path.join(_KUBERAY_DIR,
                                                          '*.yaml'))
      if not p.endswith('kustomization.yaml'))
