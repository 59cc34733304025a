"""The play picture, composed with PIL: the window, `--record` and `--screenshot` show the same one.

  +--------------------------+  +---------------------+
  | the real game (x3), or   |  | forecast +1 .. +k   |
  | the dream in DMG shades  |  | (imagined frames)   |
  +--------------------------+  +---------------------+
  | System 2's goal, rationale, last outcome; the last step's reward terms; status; keys |
"""

import dataclasses
import math
import textwrap

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from dreamer_jax.envs import emulator as emulator_lib

# The 4 DMG shades as RGB, lightest first: the real frame and the dream's decoded one alike.
SHADES_RGB = np.array([[(c >> 16) & 255, (c >> 8) & 255, c & 255] for c in emulator_lib.PALETTE],
                      np.uint8)
# The background is a blue-grey none of the shades has, so an empty panel is told from a frame.
BACKGROUND = (28, 32, 44)
TEXT = (226, 228, 234)
LABEL = (150, 190, 250)
WARN = (250, 200, 110)
MARGIN, TITLE, LINE, FONT_SIZE = 8, 20, 17, 13
GAME_SCALE = 3
THUMB = (144, 160)        # Each forecast frame is drawn at the screen's size, whatever the model's.
COLUMNS = 2


@dataclasses.dataclass(frozen=True)
class Layout:
  """Pixel boxes (x, y, width, height) of the picture's regions."""
  game: tuple
  forecast: tuple
  thumbs: tuple           # One box per forecast frame.
  text: tuple
  size: tuple             # (width, height) of the whole picture.


def layout(forecast_steps, text_lines=11):
  gh, gw = emulator_lib.SCREEN_H * GAME_SCALE, emulator_lib.SCREEN_W * GAME_SCALE
  game = (MARGIN, MARGIN + TITLE, gw, gh)
  fx = game[0] + gw + 2 * MARGIN
  rows = math.ceil(forecast_steps / COLUMNS)
  cell_h = TITLE + THUMB[0]
  thumbs = tuple((fx + (i % COLUMNS) * (THUMB[1] + MARGIN),
                  game[1] + (i // COLUMNS) * (cell_h + MARGIN) + TITLE, THUMB[1], THUMB[0])
                 for i in range(forecast_steps))
  forecast = (fx, game[1], COLUMNS * THUMB[1] + (COLUMNS - 1) * MARGIN,
              rows * cell_h + (rows - 1) * MARGIN)
  width = fx + forecast[2] + MARGIN
  top = max(game[1] + gh, forecast[1] + forecast[3]) + MARGIN
  text = (MARGIN, top, width - 2 * MARGIN, text_lines * LINE)
  height = top + text[3] + MARGIN
  # Even sides: H.264's 4:2:0 colour planes (an MP4 recording) need them.
  return Layout(game, forecast, thumbs, text, (width + width % 2, height + height % 2))


def shades_image(frame, size):
  """uint8 shades [h, w] -> an RGB PIL image of `size` (width, height), nearest-neighbour."""
  return Image.fromarray(SHADES_RGB[np.asarray(frame)]).resize(size, Image.NEAREST)


def _font():
  try:
    return ImageFont.load_default(size=FONT_SIZE)
  except TypeError:      # Pillow < 10.1: the fixed bitmap font only.
    return ImageFont.load_default()


def _wrap(draw, font, text, width):
  """Lines of `text` that fit `width` pixels (the font is proportional: a character count first)."""
  per_char = max(draw.textlength('abcdefghij', font=font) / 10, 1)
  lines = textwrap.wrap(text, max(int(width / per_char), 10)) or ['']
  return lines


def _terms(terms):
  shown = [f'{k} {v:+.3g}' for k, v in terms.items() if v]
  return ', '.join(shown) if shown else 'all terms 0'


def text_lines(session):
  """The text panel as (colour, line) pairs, most important first."""
  lines = []
  planner, plan = session.planner, session.plan
  if planner is None:
    lines.append((TEXT, 'System 2: none; System 1 pursues an explore goal'))
  elif plan is None:
    lines.append((TEXT, 'System 2: no goal yet'))
  else:
    lines.append((TEXT, f'System 2 ({plan.source}) goal: {plan.goal}'))
    lines.append((TEXT, f'    why: {plan.rationale}'))
  if planner is not None:
    if planner.history:
      last = planner.history[-1]
      lines.append((TEXT, f'    last goal: {last["goal"]}: {last["outcome"]} after {last["steps"]} '
                    'steps'))
    else:
      lines.append((TEXT, '    last goal: none finished yet'))
  lines.append((TEXT, f'last step: reward {session.reward:+.3f} ({_terms(session.reward_terms)}); '
                f'return {session.episode_return:+.2f}'))
  s = session.state
  who = 'System 1' if session.control == 'agent' else 'person'
  # The dream view shows the world model alone: the real position stays hidden until D.
  where = ('real game hidden' if session.view == 'dream' and session.dream is not None
           else f'{s["map_name"]} ({s["x"]}, {s["y"]})')
  status = (f'control: {who} | view: {session.view} | speed {session.speed} | step {session.steps} '
            f'| {where} | action {emulator_lib.ACTIONS[session.last_action]}')
  lines.append((LABEL, status + (' | PAUSED' if session.paused else '')))
  dream = session.dream
  if dream is not None:
    p = dream['probes']
    lines.append((LABEL, f'dream: {dream["steps"]} steps since its start at step '
                  f'{dream["started_at"]} (context {dream["context"]}; next restart uses '
                  f'{session.context}) | imagined map {int(p["map_id"])} '
                  f'({int(p["x"])}, {int(p["y"])}) | imagined reward {dream["reward"]:+.3f}'))
  for note in session.notes:
    lines.append((WARN, f'note: {note}'))
  lines.append((LABEL, 'keys: TAB System 1/person | arrows, Z=A, X=B, Enter=START, '
                'Backspace=SELECT | P pause | S speed | D dream/real | R restart dream | '
                'C context'))
  return lines


def compose(session):
  """The picture of `session` now -> an RGB PIL image of `layout(...).size`."""
  lay = layout(session.forecast_steps)
  canvas = Image.new('RGB', lay.size, BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  font = _font()
  gx, gy, gw, gh = lay.game
  if session.view == 'dream' and session.dream is not None:
    frame, title = session.dream['frame'], 'the dream: the world model alone (D: the real game)'
  else:
    frame, title = session.obs['frame'], f'{session.env.game.name}: the real game'
  canvas.paste(shades_image(frame, (gw, gh)), (gx, gy))
  draw.text((gx, gy - TITLE + 2), title, fill=LABEL, font=font)
  if session.paused:
    draw.rectangle((gx, gy, gx + 90, gy + LINE + 4), fill=BACKGROUND)
    draw.text((gx + 6, gy + 3), 'PAUSED', fill=WARN, font=font)
  fx, fy, _, _ = lay.forecast
  how = "the actor's intended actions" if session.brain.has_actor else 'the last action held'
  source = 'the dream' if session.view == 'dream' and session.dream is not None else 'now'
  draw.text((fx, fy - TITLE + 2), f'forecast from {source}: {how}', fill=LABEL, font=font)
  for i, (x, y, w, h) in enumerate(lay.thumbs):
    canvas.paste(shades_image(session.forecast[i], (w, h)), (x, y))
    action = emulator_lib.ACTIONS[int(session.forecast_actions[i])]
    draw.text((x, y - TITLE + 3), f'+{i + 1}  ({action})', fill=TEXT, font=font)
  tx, ty, tw, th = lay.text
  y = ty
  for colour, line in text_lines(session):
    for part in _wrap(draw, font, line, tw):
      if y + LINE > ty + th:
        return canvas
      draw.text((tx, y), part, fill=colour, font=font)
      y += LINE
  return canvas
