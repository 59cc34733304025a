"""dreamer_jax: a world-model agent (System 1) and an LLM planner (System 2) for Game Boy RPGs."""
