"""System 2's face to the control loop: `Planner.poll(state, frame)` once per step, never blocking.

A replan trigger starts an LLM call on a worker thread; System 1 keeps acting on the current goal
until the answer arrives and is validated. A failed or rejected call keeps the current goal (or lets
the rule-based planner answer when there is nothing useful to keep) and schedules a retry; after
`breaker_failures` consecutive failures a circuit breaker hands every replan to the rule-based
planner for `breaker_cooldown_s`, then lets one LLM call through again. No exception from a backend
reaches the caller of `poll`.
"""

import collections
import concurrent.futures
import dataclasses
import logging
import time
from typing import Optional

import numpy as np

from dreamer_jax.errors import UserError
from dreamer_jax.planner import backends
from dreamer_jax.planner import goals
from dreamer_jax.planner import offline
from dreamer_jax.planner import prompt as prompt_lib
from dreamer_jax.planner import scripted
from dreamer_jax.planner import triggers as triggers_lib

log = logging.getLogger(__name__)

_BLANK_FRAME = np.zeros((144, 160), np.uint8)


class CircuitBreaker:
  """Opens after `failures` consecutive failures; lets one call through after `cooldown_s`."""

  def __init__(self, failures, cooldown_s, clock=time.monotonic):
    self.failures = failures
    self.cooldown_s = cooldown_s
    self.clock = clock
    self.consecutive = 0
    self.opened_at = None

  def allow(self):
    return self.opened_at is None or self.clock() - self.opened_at >= self.cooldown_s

  def success(self):
    self.consecutive = 0
    self.opened_at = None

  def failure(self):
    """Counts a failure; returns True when this failure (re)opens the breaker."""
    self.consecutive += 1
    if self.consecutive >= self.failures and self.allow():
      self.opened_at = self.clock()
      return True
    return False


@dataclasses.dataclass
class CallResult:
  """The outcome of one LLM call, made on the worker thread and applied on the control loop's."""
  kind: str                      # 'ok', 'invalid' (a reply that failed validation) or 'failed'.
  reason: str
  plan: Optional[goals.Plan] = None
  error: str = ''
  latency_s: float = 0.0
  input_tokens: int = 0
  output_tokens: int = 0
  cost_usd: float = 0.0


class Planner:
  """Chooses System 1's goal; see the module docstring.

  Args:
    index: a goals.WorldIndex (map names and sizes) that replies are validated against.
    rules: the rule-based planner (offline or scripted), `propose(state, current_spec) -> reply`.
      It answers every replan when `llm` is None, while the breaker is open, and when a call fails
      with no goal worth keeping.
    llm: an LLM backend (`generate(prompt, png) -> backends.Reply`) or None.
    trigger_cfg: a triggers.TriggerConfig.
    knowledge: prompt.world_knowledge(world), shown to the LLM.
    dim: goal embedding width D.
    asynchronous: False runs LLM calls inside `poll` (tests of the call path, one-shot planning).
  """

  def __init__(self, index, rules, llm=None, *, trigger_cfg=None, knowledge='', dim=64,
               max_retries=3, backoff_s=1.0, breaker_failures=3, breaker_cooldown_s=60.0,
               usd_per_mtok=(0.0, 0.0), history_len=8, asynchronous=True, clock=time.monotonic,
               sleep=time.sleep):
    self.index = index
    self.rules = rules
    self.llm = llm
    self.triggers = triggers_lib.Triggers(trigger_cfg or triggers_lib.TriggerConfig())
    self.knowledge = knowledge
    self.dim = dim
    self.max_retries = max_retries
    self.backoff_s = backoff_s
    self.breaker = CircuitBreaker(breaker_failures, breaker_cooldown_s, clock)
    self.usd_per_mtok = tuple(usd_per_mtok)
    self.history = collections.deque(maxlen=history_len)
    self.clock = clock
    self.sleep = sleep
    self.current = None
    self.goal_count = 0           # Goals set so far; a reached goal set again counts anew.
    self.stats = dict(calls=0, failed=0, rejected=0, input_tokens=0, output_tokens=0, cost_usd=0.0)
    self._progress = None
    self._reached = False
    self._goal_step = 0
    self._future = None
    self._executor = None
    if llm is not None and asynchronous:
      self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='planner')

  def __repr__(self):
    return f'Planner(llm={self.llm!r}, rules={type(self.rules).__name__})'

  @property
  def in_flight(self):
    return self._future is not None

  def poll(self, state, frame=None, goal_done=None):
    """One control-loop step: applies a finished call, checks the triggers, maybe starts a call.

    Args:
      state: the environment's state dict.
      frame: the screen ([144, 160] shades or [144, 160, 3|4]); copied only when a call starts.
      goal_done: System 1's own judgement that the current goal is done (e.g. GoalController.done);
        None = judge it from the state dict.
    Returns:
      The current goals.Plan (None only before the first goal exists).
    """
    self._collect(state)
    reached = False
    if self._progress is not None:
      reached = self._progress.update(state)
      if goal_done is not None:
        reached = bool(goal_done)
      self._reached |= reached
    reason = self.triggers.check(state, reached)
    if reason is not None and self._future is None:
      self._replan(state, frame, reason)
    return self.current

  def plan_now(self, state, frame=None, reason='request'):
    """Plans once, synchronously (even for an LLM backend), and returns the resulting goal."""
    self.triggers.replanned()
    if self.llm is None or not self.breaker.allow():
      self._apply_rules(state, reason)
    else:
      args = (dict(state), frame, self._goal_text(), list(self.history), reason)
      self._finish(self._call_llm(*args), state)
    return self.current

  def state_dict(self):
    """What a resumed run keeps (JSON types): the call stats, the goal count, the recent goals.

    The current goal is not kept: a restored planner replans on its first poll.
    """
    return dict(stats={k: (float(v) if k == 'cost_usd' else int(v)) for k, v in self.stats.items()},
                goal_count=int(self.goal_count), history=[dict(h) for h in self.history])

  def load_state_dict(self, d):
    """Restores `state_dict()`'s output; anything else raises UserError."""
    expected = ("expected Planner.state_dict()'s {'stats': {calls, failed, rejected, input_tokens, "
                "output_tokens, cost_usd: numbers}, 'goal_count': int, 'history': [{goal, kind, "
                "outcome, steps}]}")
    if not isinstance(d, dict) or set(d) != {'stats', 'goal_count', 'history'}:
      found = f'with keys {sorted(d)}' if isinstance(d, dict) else f'of type {type(d).__name__}'
      raise UserError(f'planner state {found} is malformed; {expected}.')
    stats, count, history = d['stats'], d['goal_count'], d['history']
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    if not isinstance(stats, dict) or set(stats) != set(self.stats) or not all(
        number(v) for v in stats.values()):
      raise UserError(f'planner state stats {goals.short(repr(stats))} is malformed; {expected}.')
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
      raise UserError(f'planner state goal_count {count!r} is malformed; {expected}.')
    keys = {'goal', 'kind', 'outcome', 'steps'}
    if not isinstance(history, list) or not all(isinstance(h, dict) and set(h) == keys
                                                for h in history):
      raise UserError(f'planner state history is malformed; {expected}.')
    self.stats = {k: (float(v) if k == 'cost_usd' else int(v)) for k, v in stats.items()}
    self.goal_count = count
    self.history.clear()
    self.history.extend(dict(h) for h in history)   # The deque keeps the newest history_len.

  def close(self):
    """Stops the worker; a call in flight finishes on its own within its timeout."""
    if self._executor is not None:
      self._executor.shutdown(wait=False, cancel_futures=True)

  # Replanning

  def _goal_text(self):
    return self.current.goal if self.current is not None else ''

  def _replan(self, state, frame, reason):
    self.triggers.replanned()
    if self.llm is None:
      self._apply_rules(state, reason)
      return
    if not self.breaker.allow():
      log.info('planner: circuit breaker open; the %s planner answers (%s)', self.rules.name,
               reason)
      self._apply_rules(state, reason)
      self.triggers.failed()    # Keep asking, so the first replan after the cooldown tries the LLM.
      return
    if self.current is None:
      # System 1 needs a goal while the first LLM call is in flight.
      self._apply_rules(state, 'start')
    frame = None if frame is None else np.array(frame, copy=True)
    args = (dict(state), frame, self._goal_text(), list(self.history), reason)
    if self._executor is None:
      self._finish(self._call_llm(*args), state)
    else:
      self._future = self._executor.submit(self._call_llm, *args)

  def _collect(self, state):
    if self._future is not None and self._future.done():
      future, self._future = self._future, None
      self._finish(future.result(), state)

  def _call_llm(self, state, frame, current_goal, history, reason):
    """Runs on the worker thread; returns a CallResult and never raises."""
    start = self.clock()
    try:
      text = prompt_lib.build_prompt(self.knowledge, state, current_goal, history)
      png = prompt_lib.encode_png(_BLANK_FRAME if frame is None else frame)
      reply = backends.generate_with_retries(self.llm, text, png, self.max_retries, self.backoff_s,
                                             self.sleep)
    except backends.CallError as e:
      return CallResult('failed', reason, error=str(e), latency_s=self.clock() - start)
    except Exception as e:  # pylint: disable=broad-except
      # Whatever an SDK raises must not reach the control loop; keys are scrubbed from the text.
      return CallResult('failed', reason, error=backends.redact(f'{type(e).__name__}: {e}'),
                        latency_s=self.clock() - start)
    result = CallResult('ok', reason, latency_s=self.clock() - start,
                        input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
                        cost_usd=backends.cost_usd(reply, self.usd_per_mtok))
    try:
      goal, spec, rationale = goals.parse_reply(reply.text, self.index)
    except goals.InvalidReply as e:
      result.kind, result.error = 'invalid', backends.redact(str(e))
      return result
    result.plan = goals.make_plan(goal, spec, rationale, self.llm.name, self.index, self.dim)
    return result

  def _finish(self, result, state):
    stats = self.stats
    stats['calls'] += 1
    stats['input_tokens'] += result.input_tokens
    stats['output_tokens'] += result.output_tokens
    stats['cost_usd'] += result.cost_usd
    name = self.llm.name
    if result.kind == 'ok':
      self.breaker.success()
      log.info('planner: %s goal %r %s (reason %s; %.2f s, %d+%d tokens, ~$%.5f)', name,
               result.plan.goal, result.plan.goal_spec, result.reason, result.latency_s,
               result.input_tokens, result.output_tokens, result.cost_usd)
      self._apply(result.plan, state)
      return
    if result.kind == 'invalid':
      stats['rejected'] += 1
      log.warning('planner: rejected %s reply: %s (%.2f s, %d+%d tokens, ~$%.5f)', name,
                  result.error, result.latency_s, result.input_tokens, result.output_tokens,
                  result.cost_usd)
    else:
      stats['failed'] += 1
      log.warning('planner: %s call failed: %s (%.2f s)', name, result.error, result.latency_s)
    opened = self.breaker.failure()
    if opened:
      log.warning('planner: circuit breaker open after %d consecutive failures; the %s planner '
                  'answers for %g s', self.breaker.consecutive, self.rules.name,
                  self.breaker.cooldown_s)
    if self.current is None or self._reached or opened:
      self._apply_rules(state, 'fallback')
    else:
      log.info('planner: keeping goal %r; retrying in %d steps', self.current.goal,
               self.triggers.cfg.retry_steps)
    self.triggers.failed()

  def _apply_rules(self, state, reason):
    current_spec = self.current.goal_spec if self.current is not None else None
    try:
      goal, spec, rationale = goals.parse_reply(self.rules.propose(state, current_spec), self.index)
    except goals.InvalidReply as e:
      log.warning('planner: rejected %s reply: %s; keeping the current goal', self.rules.name, e)
      return
    plan = goals.make_plan(goal, spec, rationale, self.rules.name, self.index, self.dim)
    log.info('planner: %s goal %r %s (reason %s)', self.rules.name, plan.goal, plan.goal_spec,
             reason)
    self._apply(plan, state)

  def _apply(self, plan, state):
    if self.current is not None and plan.goal_spec == self.current.goal_spec and not self._reached:
      # The same unfinished goal again: keep its progress so a half-done goal is not restarted.
      self.current = plan
      return
    if self.current is not None:
      self.history.append(dict(goal=self.current.goal, kind=self.current.goal_spec['kind'],
                               outcome='reached' if self._reached else 'replaced before reached',
                               steps=self.triggers.step - self._goal_step))
    self.current = plan
    self.goal_count += 1
    self._progress = goals.GoalProgress(plan.goal_spec, state)
    self._reached = False
    self._goal_step = self.triggers.step


def game_world(game):
  """(world data, {map id: name}) for the game named `game` ('tinymon' or 'pokered').

  tinymon has world data (maps, gyms, trainers: tinymon.world.World); Pokémon Red has only its game
  spec's map table, so its world is None. An unknown name raises UserError (games.get_game).
  """
  if game == 'tinymon':
    from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
    world = tinymon_world.load_world()
    return world, dict(world.map_names)
  from dreamer_jax.envs import games  # pylint: disable=g-import-not-at-top
  return None, dict(games.get_game(game).map_names())


def build_planner(config, world, backend=None, asynchronous=True, map_names=None):
  """The planner described by config.planner for `world` (a tinymon.world.World) or a map table.

  Args:
    config: the config's planner section.
    world: the game's world data (map names and sizes for validation, knowledge for the prompt), or
      None for a game without world data (Pokémon Red): goals are then checked against `map_names`
      and the rule-based answers come from offline.ExplorePlanner.
    backend: overrides config.backend ('auto', 'gemini', 'openai', 'offline', 'scripted').
    map_names: {map id: name}; required when `world` is None (see `game_world`), ignored otherwise.
  Raises:
    UserError: an unknown backend, a missing key or package for an LLM backend, a bad scripted file,
      a goal embedding width below goals.MIN_EMBEDDING_DIM.
  """
  if config.goal_embedding_dim < goals.MIN_EMBEDDING_DIM:
    raise UserError(f'config.planner.goal_embedding_dim={config.goal_embedding_dim} is too small; '
                    f'expected at least {goals.MIN_EMBEDDING_DIM}.')
  if world is None and not map_names:
    raise ValueError('build_planner needs world data or map_names (see game_world).')
  name = backends.resolve_backend(backend or config.backend)
  if world is not None:
    index = goals.WorldIndex.from_world(world)
    rules = offline.OfflinePlanner(world, config.heal_below, config.min_party, config.level_margin,
                                   config.replan_stuck_steps, config.get('min_species', 0),
                                   config.get('waypoints', False))
  else:
    index = goals.WorldIndex(map_names=dict(map_names), map_sizes={})
    rules = offline.ExplorePlanner()
  llm, prices = None, (0.0, 0.0)
  if name == 'scripted':
    if not config.scripted_goals:
      raise UserError('planner backend scripted needs config.planner.scripted_goals, a JSON list '
                      'of goals; it is empty.')
    rules = scripted.ScriptedPlanner(scripted.load_script(config.scripted_goals))
  elif name in ('gemini', 'openai'):
    llm = backends.make_llm_backend(name, config)
    prices = tuple(config.gemini_usd_per_mtok if name == 'gemini' else config.openai_usd_per_mtok)
  knowledge = ''
  if llm is not None:
    knowledge = (prompt_lib.world_knowledge(world) if world is not None else
                 prompt_lib.map_knowledge(index.map_names))
  return Planner(
      index, rules, llm,
      trigger_cfg=triggers_lib.TriggerConfig.from_config(config),
      knowledge=knowledge,
      dim=config.goal_embedding_dim, max_retries=config.max_retries,
      backoff_s=config.retry_backoff_s, breaker_failures=config.breaker_failures,
      breaker_cooldown_s=config.breaker_cooldown_s, usd_per_mtok=prices,
      history_len=config.history_len, asynchronous=asynchronous)
