"""System 1: the goal-conditioned actor-critic on the world model's latent state, warm-started by
behaviour cloning and trained inside the model's imagination."""
