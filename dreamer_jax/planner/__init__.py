"""System 2: the strategic planner (LLM or rule-based) that sets the macro goal System 1 pursues."""
