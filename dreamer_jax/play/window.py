"""The play window (pygame): shows the composed picture, reads the keyboard, paces display frames.

A scripted key (`--keys`) is posted as a pygame KEYDOWN event, so it takes the keyboard's path:
the event queue, `KEYMAP`, then `Session.key`.
"""

import os
import sys
import time

from dreamer_jax.errors import UserError

FPS = 60
_NO_WINDOW = ('no window can be opened ({}); run headless instead with --record out.gif --steps N '
              '(or --headless --steps N --screenshot FILE).')
# Drivers that "open" a window nobody can see; SDL falls back to them when no display exists.
_INVISIBLE = ('offscreen', 'dummy')


def _pygame():
  os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', '1')
  import pygame  # pylint: disable=g-import-not-at-top
  return pygame


def keymap(pygame):
  """pygame key codes -> `session.KEYS` names (Z = A, X = B, Enter = START, Backspace = SELECT)."""
  return {pygame.K_TAB: 'TAB', pygame.K_p: 'P', pygame.K_s: 'S', pygame.K_d: 'D', pygame.K_r: 'R',
          pygame.K_c: 'C', pygame.K_UP: 'UP', pygame.K_DOWN: 'DOWN', pygame.K_LEFT: 'LEFT',
          pygame.K_RIGHT: 'RIGHT', pygame.K_z: 'A', pygame.K_x: 'B', pygame.K_RETURN: 'START',
          pygame.K_BACKSPACE: 'SELECT'}


class Window:
  """A pygame window of `size` (width, height); UserError when none can be opened."""

  def __init__(self, size, title='dreamer_jax play'):
    asked = os.environ.get('SDL_VIDEODRIVER', '').lower()
    if (sys.platform.startswith('linux') and not asked
        and not os.environ.get('DISPLAY') and not os.environ.get('WAYLAND_DISPLAY')):
      # Asked anyway, SDL prints its own errors on the way to an invisible fallback driver.
      raise UserError(_NO_WINDOW.format('neither DISPLAY nor WAYLAND_DISPLAY is set'))
    pygame = self.pygame = _pygame()
    try:
      pygame.display.init()
      driver = pygame.display.get_driver()
    except pygame.error as e:
      raise UserError(_NO_WINDOW.format(f'SDL: {str(e).rstrip(".")}')) from None
    if driver in _INVISIBLE and driver not in asked:
      pygame.display.quit()
      raise UserError(_NO_WINDOW.format(f'SDL found no display, only its {driver} driver'))
    try:
      self.screen = pygame.display.set_mode(size)
    except pygame.error as e:
      pygame.display.quit()
      raise UserError(_NO_WINDOW.format(f'SDL: {str(e).rstrip(".")}')) from None
    pygame.display.set_caption(title)
    self.keys = keymap(pygame)
    self.codes = {name: code for code, name in self.keys.items()}
    self.clock = pygame.time.Clock()

  def show(self, image):
    surface = self.pygame.image.frombuffer(image.tobytes(), image.size, 'RGB')
    self.screen.blit(surface, (0, 0))
    self.pygame.display.flip()

  def post(self, name):
    """Posts the key `name` (a `session.KEYS` name) as if it were pressed."""
    self.pygame.event.post(self.pygame.event.Event(self.pygame.KEYDOWN, key=self.codes[name],
                                                   mod=0, unicode='', scancode=0))

  def poll(self):
    """-> (names of the keys pressed since the last poll, names of the buttons held, quit?)."""
    pg = self.pygame
    pressed, quit_ = [], False
    for event in pg.event.get():
      if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
        quit_ = True
      elif event.type == pg.KEYDOWN and event.key in self.keys:
        pressed.append(self.keys[event.key])
    state = pg.key.get_pressed()
    held = [name for code, name in self.keys.items()
            if name in ('UP', 'DOWN', 'LEFT', 'RIGHT', 'A', 'B') and state[code]]
    return pressed, held, quit_

  def save(self, path):
    """A screenshot of the window's surface as it is shown."""
    self.pygame.image.save(self.screen, path)

  def wait(self):
    """Paces the loop at 60 display frames per second."""
    self.clock.tick(FPS)

  def close(self):
    self.pygame.display.quit()


def run(session, window, compose, scripted=(), max_steps=None, max_seconds=None):
  """The window's loop until it is closed (or Escape), `max_steps` agent steps or `max_seconds`.

  Args:
    compose: session -> RGB PIL image (`view.compose`).
    scripted: [(display frame, key name)] posted at those frames (`session.parse_keys`).
  """
  scripted = list(scripted)
  began = time.monotonic()
  window.show(compose(session))
  while True:
    while scripted and scripted[0][0] <= session.frames:
      window.post(scripted.pop(0)[1])
    pressed, held, quit_ = window.poll()
    if quit_:
      break
    for name in pressed:
      session.key(name)
    session.hold(held)
    stepped = session.tick()
    if stepped or pressed:
      window.show(compose(session))
    if max_steps is not None and session.steps >= max_steps:
      break
    if max_seconds is not None and time.monotonic() - began >= max_seconds:
      break
    if session.speed != 'max' or session.paused:
      window.wait()
