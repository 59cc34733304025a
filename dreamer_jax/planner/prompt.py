"""What the LLM planner is shown: the screenshot as PNG, game knowledge, the state and recent goals.

The game knowledge (maps, connections, gyms, healing spots, gates) comes from the world data and is
rendered once; each call adds the seed's per-call input, {"state", "current_goal"}, and the outcome
of the last few goals so the model can avoid repeating a goal that keeps failing.
"""

import io
import json

import numpy as np
from PIL import Image

from dreamer_jax.planner import goals

# DMG shade 0 is the lightest.
_SHADE_GREYS = np.array([255, 170, 85, 0], np.uint8)


def encode_png(frame):
  """PNG bytes of a frame: [144, 160] DMG shades 0..3 or greys, or [144, 160, 3|4] RGB(A)."""
  frame = np.asarray(frame)
  if frame.ndim == 2:
    grey = _SHADE_GREYS[frame] if frame.max(initial=0) <= 3 else frame.astype(np.uint8)
    image = Image.fromarray(grey, mode='L')
  elif frame.ndim == 3 and frame.shape[-1] in (3, 4):
    image = Image.fromarray(frame[..., :3].astype(np.uint8), mode='RGB')
  else:
    raise ValueError(f'frame has shape {frame.shape}; expected [H, W] or [H, W, 3|4].')
  buf = io.BytesIO()
  image.save(buf, format='PNG')
  return buf.getvalue()


def world_knowledge(world):
  """Game knowledge as text: maps with sizes and exits, gyms, tall grass, healing spots, gates."""
  names = world.map_names
  lines = ['Maps (id, name, width x height cells; exits lead to):']
  for m in world.maps:
    exits = ', '.join(names[i] for i in sorted(world.connections.get(m.id, ())))
    lines.append(f'- {m.id} {m.name} ({m.width}x{m.height}); exits to: {exits or "none"}')
  trainers = {t.id: t for t in world.trainers}
  lines.append('Gyms (beat the leader to earn the badge; badges open gates in order):')
  for map_id, leader_id, badge_bit in world.gyms:
    leader = trainers[leader_id]
    top = max(level for _, level in leader.party)
    lines.append(f'- badge {badge_bit}: {leader.name} in {names[map_id]} at x={leader.x}, '
                 f'y={leader.y}, strongest mon level {top}')
  lines.append('Tall grass (wild mons by map: how many species, their levels):')
  for m in world.maps:
    if m.encounters:
      low, high = min(e[1] for e in m.encounters), max(e[2] for e in m.encounters)
      lines.append(f'- {m.name}: {len(m.encounters)} species, levels {low}-{high}')
  lines.append('Healing spots (talk to the nurse to heal the party and refill balls):')
  for map_id, x, y in world.healing_spots:
    lines.append(f'- {names[map_id]} at x={x}, y={y}')
  gates = [(m.name, g) for m in world.maps for g in m.gates]
  if gates:
    lines.append('Gates (a guard blocks the cell until the badges are held):')
    for map_name, gate in gates:
      x, y, required = gate[0], gate[1], gate[2]
      bits = [str(b) for b in range(8) if required >> b & 1]
      lines.append(f'- {map_name} x={x}, y={y}: needs badge bit(s) {", ".join(bits)}')
  return '\n'.join(lines)


def map_knowledge(map_names, title='Pokémon Red/Blue (UE)'):
  """Game knowledge for a game without world data: its name and its map table only."""
  lines = [f'The game is {title} itself, not tinymon; there is no world data beyond this map '
           'table, so give map names from it and leave x and y null unless the screen shows the '
           'cell.', 'Maps (id, name):']
  lines += [f'- {map_id} {name}' for map_id, name in sorted(map_names.items())]
  return '\n'.join(lines)


_INSTRUCTIONS = f"""You are the strategic planner of an agent playing tinymon, a Game Boy RPG in
the style of Pokemon Red. A low-level controller walks, talks and battles; you choose its next
macro goal. The aim: earn every gym badge, catching new species and keeping the party healthy.

Answer with ONE JSON object and nothing else:
{{"goal": one sentence (at most {goals.MAX_GOAL_CHARS} characters),
 "goal_spec": {{"kind": one of {", ".join(goals.GOAL_KINDS)},
               "map": a map name exactly as listed below, or null,
               "x": a cell column on that map, or null, "y": a cell row on that map, or null}},
 "rationale": why, briefly (at most {goals.MAX_RATIONALE_CHARS} characters)}}
Kinds:
- navigate: walk to the map (and cell).
- battle: challenge the trainer standing at (map, x, y); with a map but no cell, fight wild mons in
  that map's tall grass (training); with no map, win the current battle.
- explore: visit new places (map optional).
- heal: talk to a nurse (map and cell optional; default the nearest).
- catch: catch a new species in tall grass (map optional).
- talk: talk to the person or sign at (map, x, y).
Give x and y together, only with a map, inside the map's size; cells count from (0, 0) top-left.
"""


def _history_lines(history):
  if not history:
    return ['(none yet)']
  return [f'- {h["goal"]} [{h["kind"]}]: {h["outcome"]} after {h["steps"]} steps' for h in history]


def build_prompt(knowledge, state, current_goal, history):
  """The full text prompt for one call; the screenshot travels next to it as an image part.

  Args:
    knowledge: `world_knowledge(world)`.
    state: the environment's state dict.
    current_goal: the goal System 1 is pursuing now ('' if none).
    history: recent goals, oldest first: dicts with goal, kind, outcome, steps.
  """
  achieved = (f'Achieved so far: {state.get("badges", 0)} badge(s) '
              f'(bits {state.get("badge_bits", 0):08b}), {state.get("pokedex_owned", 0)} species '
              f'owned, party of {state.get("party_count", 0)} at levels '
              f'{state.get("party_levels", [])}.')
  call_input = json.dumps({'state': state, 'current_goal': current_goal or ''}, sort_keys=True)
  return '\n'.join([
      _INSTRUCTIONS, 'Game knowledge:', knowledge, '', achieved,
      'Recent goals (oldest first) and how they ended:', *_history_lines(history), '',
      'The attached image is the current screen. Current input:', call_input])
