"""The planner benchmark: `python -m experiments.benchmark --suite planner --json`.

Figures: the cost of `Planner.poll` per control-loop step with the offline planner and while an LLM
call is in flight (a stand-in backend that sleeps, so no network is needed; the loop must not wait
for it), the offline planner's time per replan, and the offline planner driving the scripted
expert's GoalController: steps to 3 tinymon badges and steps per second.
"""

import json
import time

from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.planner import async_planner
from dreamer_jax.planner import backends
from dreamer_jax.planner import goals
from dreamer_jax.planner import offline
from dreamer_jax.planner import run as run_lib
from dreamer_jax.planner import triggers


class _SleepingBackend:
  """An LLM stand-in: answers a fixed valid goal after `delay_s`."""
  name = 'sleeping'

  def __init__(self, delay_s, reply):
    self.delay_s = delay_s
    self.reply = reply

  def generate(self, prompt, png):
    del prompt, png
    time.sleep(self.delay_s)
    return backends.Reply(text=self.reply)


def _start_state(world):
  start = world.start
  max_hp = 23
  return dict(map_id=start['map'], map_name=world.map_names[start['map']], x=start['x'],
              y=start['y'], badges=0, badge_bits=0, party_count=1, party_hp=[max_hp],
              party_max_hp=[max_hp], party_levels=[start['level']], in_battle=0,
              dialog_open=False, pokedex_owned=1, pokedex_seen=1, money=start['money'],
              steps_without_progress=0)


def _poll_us(planner, state, steps):
  start = time.perf_counter()
  for _ in range(steps):
    planner.poll(state)
  return (time.perf_counter() - start) / steps * 1e6


def run(config, quick=False):
  """Returns the figures as a dict for `config` (its env, reward and planner sections drive the play
  run); `quick` shortens every measurement."""
  world = tinymon_world.load_world()
  index = goals.WorldIndex.from_world(world)
  state = _start_state(world)
  steps = 2_000 if quick else 20_000
  quiet = triggers.TriggerConfig(replan_every=0, stuck_steps=0)
  rules = offline.OfflinePlanner(world)
  results = {}

  planner = async_planner.Planner(index, rules, trigger_cfg=quiet)
  planner.poll(state)
  results['poll_us_offline'] = round(_poll_us(planner, state, steps), 2)

  reply = json.dumps({'goal': 'Go to the gym.', 'rationale': '',
                      'goal_spec': {'kind': 'navigate', 'map': world.map_names[7], 'x': 4,
                                    'y': 8}})
  planner = async_planner.Planner(index, rules, _SleepingBackend(2.0, reply), trigger_cfg=quiet)
  try:
    planner.poll(state)
    results['poll_us_llm_in_flight'] = round(_poll_us(planner, state, steps), 2)
    results['llm_call_was_in_flight'] = planner.in_flight
  finally:
    planner.close()

  start = time.perf_counter()
  repeats = 20 if quick else 200
  for i in range(repeats):
    # A third of the replans look for the nearest nurse, the costliest rule.
    lead_hp = 0 if i % 3 == 0 else 23
    rules.propose(dict(state, party_levels=[6 + i % 20] * 3, party_count=3,
                       party_hp=[lead_hp, 23, 23], party_max_hp=[23] * 3))
  results['offline_propose_ms'] = round((time.perf_counter() - start) / repeats * 1e3, 3)

  play = run_lib.play(config, max_steps=5_000 if quick else 20_000, progress=False)
  results['play_badges'] = play['badges']
  results['play_steps'] = play['steps']
  results['play_steps_per_s'] = round(play['steps'] / max(play['seconds'], 1e-9), 1)
  return results
