"""The learner process: trains on Reverb samples and pushes policy weights."""

# Start-up milestones as the learner logs them. The local launcher starts the
# processes the first train step does not need when it reads these in the
# learner's log (deploy/supervisor.py), so they do not compete for CPU with it.
PUSHED_WEIGHTS_LOG = 'Pushed weights version'
TRAINING_LOG = 'First train step done'
