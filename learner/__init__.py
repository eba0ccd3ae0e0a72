"""The learner process: trains on Reverb samples and pushes policy weights."""
