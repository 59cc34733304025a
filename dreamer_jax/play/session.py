"""The play session: who drives (System 1 or a person), what is shown (the real game or the dream),
pause, speed and the dream's context, advanced one display frame at a time.

One agent step emulates `frames_per_step` (24) frames at once, so at 1x (60 frames/s) the session
steps every 24 display frames: 2.5 agent steps/s, System 1 deciding once per step. Every key, from
the keyboard or from a script (`--keys`), goes through `Session.key`.

Each step: the action (System 1's, from the state of what is shown, or the person's buttons) is
executed in the real game; the world model's posterior observes the new frame; the dream, once
started, takes the same action in the prior alone, so that D shows the dream and the real game at
the same moment (DIAMOND's ←/→); System 2 is polled; and the forecast imagines the next k steps
from the shown state under the actor's intended actions.
"""

import collections

import numpy as np

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.errors import UserError

SPEEDS = ('1x', '4x', 'max')
CONTEXTS = (4, 8, 16)
CONTROLS = ('agent', 'person')
VIEWS = ('real', 'dream')
# The person's buttons -> actions. SELECT is not among the 8 actions the models know: it is a no-op.
BUTTONS = dict(DOWN=emulator_lib.DOWN, LEFT=emulator_lib.LEFT, RIGHT=emulator_lib.RIGHT,
               UP=emulator_lib.UP, A=emulator_lib.A, B=emulator_lib.B, START=emulator_lib.START,
               SELECT=emulator_lib.NOOP)
COMMANDS = dict(TAB='switch control between System 1 and the person', P='pause',
                S='speed 1x / 4x / max', D='show the dream / the real game',
                R='restart the dream from the current real frame', C='dream context length')
KEYS = tuple(COMMANDS) + tuple(BUTTONS)


def parse_keys(text):
  """'FRAME:KEY,...' (a scripted key sequence) -> [(frame, KEY)] sorted by frame; UserError if bad."""
  out = []
  for item in filter(None, (part.strip() for part in (text or '').split(','))):
    frame, _, name = item.partition(':')
    name = name.strip().upper()
    if not frame.strip().isdigit() or name not in KEYS:
      raise UserError(f'--keys item {item!r} is not FRAME:KEY with KEY one of {", ".join(KEYS)}; '
                      "expected e.g. '10:TAB,20:P'.")
    out.append((int(frame), name))
  return sorted(out, key=lambda item: item[0])


class Session:
  """One game, its world model (and actor) and System 2, with the controls described above.

  Args:
    env: a `GameBoyEnv`. brain: a `brain.Brain`. planner: System 2 (`Planner.poll`) or None.
    dream: start showing the dream (`--dream`). forecast_steps: k imagined frames.
    speed: one of SPEEDS. context: the dream's observed steps, one of CONTEXTS.
    person: where the person's actions come from when no button is pressed: 'keyboard' (a no-op)
      or 'random' (headless recording: nobody is at the keyboard).
    notify: called once with each note for the user (e.g. that no agent exists).
  """

  def __init__(self, env, brain, planner=None, *, dream=False, forecast_steps=4, speed='1x',
               context=8, person='keyboard', seed=0, notify=None):
    if speed not in SPEEDS:
      raise UserError(f'--speed is {speed!r}; expected one of {", ".join(SPEEDS)}.')
    if context not in CONTEXTS:
      raise UserError(f'--context is {context}; expected one of {", ".join(map(str, CONTEXTS))}.')
    if forecast_steps < 1:
      raise UserError(f'--forecast is {forecast_steps}; expected at least 1 imagined step.')
    self.env, self.brain, self.planner = env, brain, planner
    self.forecast_steps, self.person = int(forecast_steps), person
    self.frames_per_step = env.emulator.frames_per_step
    self.speed, self.context = speed, context
    self.control = 'agent' if brain.has_actor else 'person'
    self.view = 'dream' if dream else 'real'
    self.paused = False
    self.steps = self.frames = self.button_presses = 0
    self.events, self.notes = [], []
    self._notify = notify or (lambda note: None)
    self._rng = np.random.default_rng(seed)
    self._since = 0
    self._pressed, self._held = [], set()
    self.history = collections.deque(maxlen=max(CONTEXTS))   # (frame, ram, action into it).
    self.dream = None
    self.last_action = emulator_lib.NOOP
    self.reward, self.episode_return = 0.0, 0.0
    if not brain.has_actor:
      self.note('no System 1 checkpoint in the workdir: '
                + ('random actions drive' if person == 'random' else 'the person drives')
                + ' and the forecast holds the last action')
    self._reset()
    if dream:
      self.restart_dream()
    self._refresh()

  # Notes and events

  def note(self, text):
    """A message for the user, shown in the text panel and passed to `notify`, once each."""
    if text not in self.notes:
      self.notes.append(text)
      self._notify(text)

  def status(self):
    return dict(control=self.control, view=self.view, paused=self.paused, speed=self.speed,
                context=self.context)

  def summary(self):
    """The session as a JSON-able dict (what `--json` prints at exit)."""
    return dict(self.status(), steps=self.steps, frames=self.frames, has_agent=self.brain.has_actor,
                game=self.env.game.name, episode_return=round(self.episode_return, 4),
                dream_steps=None if self.dream is None else self.dream['steps'],
                button_presses=self.button_presses, events=self.events, notes=self.notes)

  # Keys

  def key(self, name):
    """The one key handler: a command of COMMANDS or a Game Boy button of BUTTONS."""
    if name in BUTTONS:
      self.button_presses += 1
      self._pressed.append(BUTTONS[name])
      if name == 'SELECT':
        self.note('SELECT is not one of the 8 actions the models know; it is sent as a no-op')
      return
    if name == 'TAB':
      if self.brain.has_actor:
        self.control = 'person' if self.control == 'agent' else 'agent'
      else:
        self.note('TAB: there is no System 1 to hand control to; the person keeps it')
    elif name == 'P':
      self.paused = not self.paused
    elif name == 'S':
      self.speed = SPEEDS[(SPEEDS.index(self.speed) + 1) % len(SPEEDS)]
      self._since = 0
    elif name == 'D':
      self.view = 'real' if self.view == 'dream' else 'dream'
      if self.view == 'dream' and self.dream is None:
        self.restart_dream()
    elif name == 'R':
      self.restart_dream()
    elif name == 'C':
      self.context = CONTEXTS[(CONTEXTS.index(self.context) + 1) % len(CONTEXTS)]
    else:
      raise ValueError(f'unknown key {name!r}; expected one of {KEYS}')
    self.events.append(dict(self.status(), key=name, frame=self.frames, step=self.steps))
    self._refresh()

  def hold(self, buttons):
    """The buttons the person holds down now (names of BUTTONS): they repeat every step."""
    self._held = {BUTTONS[b] for b in buttons}

  # Time

  def period(self):
    """Display frames per agent step at the current speed."""
    return {'1x': self.frames_per_step, '4x': max(self.frames_per_step // 4, 1), 'max': 1}[self.speed]

  def tick(self):
    """One display frame (1/60 s at 1x): steps the game when one is due; True if it stepped."""
    self.frames += 1
    if self.paused:
      return False
    self._since += 1
    if self._since < self.period():
      return False
    self._since = 0
    self.step()
    return True

  # Stepping

  def _reset(self):
    obs, info = self.env.reset()
    self._arrive(obs, info, emulator_lib.NOOP, first=True)

  def _arrive(self, obs, info, action, first=False):
    self.obs, self.state, self.reward_terms = obs, info['state'], info['reward_terms']
    if first:
      self.history.clear()
      self.carry = self.brain.initial()
    self.carry = self.brain.observe(self.carry, action, first, obs['frame'], obs['ram'])
    self.history.append((obs['frame'], obs['ram'], action))
    self.plan = self.planner.poll(self.state, obs['frame']) if self.planner is not None else None

  def _shown_carry(self):
    return self.dream['carry'] if self.view == 'dream' and self.dream is not None else self.carry

  def goal_vector(self):
    return self.brain.goal_vector(self.plan.goal_spec if self.plan is not None else None)

  def _choose(self):
    if self.control == 'agent':
      self._pressed.clear()     # Buttons pressed while System 1 drives are not saved for later.
      return self.brain.act(self._shown_carry(), self.goal_vector())
    if self._pressed:
      return self._pressed.pop(0)
    if self._held:
      return min(self._held)
    if self.person == 'random':
      return int(self._rng.integers(emulator_lib.NUM_ACTIONS))
    return emulator_lib.NOOP

  def step(self):
    """One agent step (see the module docstring)."""
    action = self._choose()
    obs, reward, _, truncated, info = self.env.step(action)
    self.steps += 1
    self.last_action = action
    self.reward = float(reward)
    self.episode_return += self.reward
    self._arrive(obs, info, action)
    if self.dream is not None:
      carry, frame, probes, imagined = self.brain.dream(self.dream['carry'], action)
      self.dream.update(carry=carry, frame=frame, probes=probes, reward=imagined,
                        steps=self.dream['steps'] + 1)
    if truncated:
      self.note('the episode reached max_episode_steps; the game restarts from its start state')
      self._reset()
    self._refresh()

  def restart_dream(self):
    """The dream starts again from the current real frame, after observing up to `context` real
    steps (fewer right after a reset)."""
    steps = list(self.history)[-self.context:]
    carry = self.brain.observe_context(steps)
    frame, probes, reward = self.brain.readout(carry)
    self.dream = dict(carry=carry, frame=frame, probes=probes, reward=reward, steps=0,
                      context=len(steps), started_at=self.steps)

  def _refresh(self):
    """The forecast from the shown state: k imagined frames under the actor's intended actions."""
    self.forecast, self.forecast_actions = self.brain.forecast(
        self._shown_carry(), self.last_action, self.goal_vector(), self.forecast_steps)
