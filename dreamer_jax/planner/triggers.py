"""When System 2 replans: a regular interval, being stuck, the goal reached, a map change, a battle
starting or ending, and a retry after a failed call. Each trigger can be switched off in the config.
"""

import dataclasses


@dataclasses.dataclass
class TriggerConfig:
  """Plain values read from config.planner (0 switches a step-count trigger off).

  `min_steps` is the least number of steps between two replans caused by a reached goal.
  """
  replan_every: int = 500
  stuck_steps: int = 200
  on_map_change: bool = True
  on_battle: bool = True
  on_goal_reached: bool = True
  retry_steps: int = 50
  min_steps: int = 5

  @classmethod
  def from_config(cls, config):
    return cls(replan_every=config.replan_every, stuck_steps=config.replan_stuck_steps,
               on_map_change=config.replan_on_map_change, on_battle=config.replan_on_battle,
               on_goal_reached=config.replan_on_goal_reached, retry_steps=config.retry_steps,
               min_steps=config.replan_min_steps)


class Triggers:
  """Watches successive state dicts and says why to replan now, or None.

  `check` is called once per agent step; `replanned` records that a call started, which restarts the
  interval and stuck counters; `failed` schedules a retry `retry_steps` later.
  """

  def __init__(self, cfg):
    self.cfg = cfg
    self.step = 0
    self._last_replan = None
    self._retry_at = None
    self._map = None
    self._battle = None

  def check(self, state, goal_reached):
    """Advances one step and returns the reason to replan ('start', 'goal_reached', 'battle_start',
    'battle_end', 'map_change', 'stuck', 'retry', 'interval') or None."""
    self.step += 1
    cfg = self.cfg
    map_id = state.get('map_id')
    battle = state.get('in_battle') in (1, 2)
    prev_map, prev_battle = self._map, self._battle
    self._map, self._battle = map_id, battle
    since = None if self._last_replan is None else self.step - self._last_replan
    if since is None:
      return 'start'
    # A goal that is reached as soon as it is set must not turn into one LLM call per step.
    if cfg.on_goal_reached and goal_reached and since >= cfg.min_steps:
      return 'goal_reached'
    if cfg.on_battle and prev_battle is not None and battle != prev_battle:
      return 'battle_start' if battle else 'battle_end'
    if cfg.on_map_change and prev_map is not None and map_id != prev_map and not battle:
      return 'map_change'
    if cfg.stuck_steps and state.get('steps_without_progress', 0) >= cfg.stuck_steps and (
        since >= cfg.stuck_steps):
      return 'stuck'
    if self._retry_at is not None and self.step >= self._retry_at:
      return 'retry'
    if cfg.replan_every and since >= cfg.replan_every:
      return 'interval'
    return None

  def replanned(self):
    self._last_replan = self.step
    self._retry_at = None

  def failed(self):
    self._retry_at = self.step + max(1, self.cfg.retry_steps)
