"""`experiments.play` as one function: checks the user's choices cheapest first (flags, the workdir,
the display), loads the networks, the game and System 2, then runs the window or the headless loop.
"""

import os

from dreamer_jax.envs import gb_env
from dreamer_jax.errors import UserError
from dreamer_jax.play import brain as brain_lib
from dreamer_jax.play import record as record_lib
from dreamer_jax.play import session as session_lib
from dreamer_jax.play import view
from dreamer_jax.play import window as window_lib

DEFAULT_WORKDIR = os.path.join('pretrained', 'tinymon')


def resolve_workdir(workdir):
  """The workdir to play: the one given, else `DEFAULT_WORKDIR` if it exists."""
  if workdir:
    return workdir
  if os.path.isdir(DEFAULT_WORKDIR):
    return DEFAULT_WORKDIR
  raise UserError(f'--workdir is required here ({DEFAULT_WORKDIR} does not exist); expected a '
                  'workdir with a world-model checkpoint from experiments.train_world_model.')


def _headless(session, steps, scripted, recorder):
  """Runs `steps` agent steps with no window; each step's picture goes to `recorder`."""
  scripted = list(scripted)
  while session.steps < steps:
    while scripted and scripted[0][0] <= session.frames:
      session.key(scripted.pop(0)[1])
    if session.paused and not scripted:
      raise UserError(f'--keys leaves the session paused at step {session.steps}, so --steps '
                      f'{steps} is never reached; expected a later P to resume.')
    if session.tick() and recorder is not None:
      recorder.add(view.compose(session))


def run(workdir=None, *, dream=False, record=None, steps=None, headless=False, screenshot=None,
        rom=None, state=None, keys='', speed='1x', context=8, forecast=4, latent='mode',
        greedy=False, backend=None, max_seconds=None, seed=0, notify=None):
  """Plays `workdir`'s System 1 (or a person) in a window, or headless; returns `Session.summary()`
  with what was written (record, frames_written, screenshot).

  Args:
    dream: start in the dream (the world model alone). record: a .gif or .mp4 path (headless).
    steps: agent steps to run (required headless; a window otherwise runs until it is closed).
    screenshot: a .png of the picture at the end. rom, state: another ROM and start state.
    keys: a scripted key sequence 'FRAME:KEY,...' (`session.parse_keys`).
    speed, context, forecast, latent, greedy: see `Session` and `brain.Brain`.
    backend: System 2's backend instead of the config's. max_seconds: the window's time limit.
    notify: called with each note for the user.
  """
  scripted = session_lib.parse_keys(keys)
  headless = headless or bool(record)
  if record:
    record_lib.check_path(record)
  if headless and not steps:
    raise UserError('--record and --headless need --steps N, the number of agent steps to run.')
  if steps is not None and steps < 1:
    raise UserError(f'--steps is {steps}; expected a positive number of agent steps.')
  if context not in session_lib.CONTEXTS:
    raise UserError(f'--context is {context}; expected one of '
                    f'{", ".join(map(str, session_lib.CONTEXTS))}.')
  if forecast < 1:
    raise UserError(f'--forecast is {forecast}; expected at least 1 imagined step.')
  if screenshot and os.path.splitext(screenshot)[1].lower() != '.png':
    raise UserError(f'--screenshot {screenshot!r} must end in .png.')
  workdir = resolve_workdir(workdir)
  brain_lib.check_workdir(workdir)
  window = None if headless else window_lib.Window(view.layout(forecast).size)
  env = planner = None
  try:
    config, wm, wm_params, actor, actor_params = brain_lib.load_networks(workdir)
    env_config = config.env.to_dict()
    env_config.update({k: v for k, v in (('rom_path', rom), ('state_path', state)) if v})
    env = gb_env.GameBoyEnv.from_config(env_config, config.reward)
    brain = brain_lib.Brain(wm, wm_params, actor, actor_params, int(config.agent.goal_dim),
                            env.map_names, latent, greedy, seed)
    from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
    world, names = async_planner.game_world(env.game.name)
    planner = async_planner.build_planner(config.planner, world, backend, map_names=names)
    session = session_lib.Session(env, brain, planner, dream=dream, forecast_steps=forecast,
                                  speed=speed, context=context,
                                  person='random' if headless else 'keyboard', seed=seed,
                                  notify=notify)
    recorder = None
    if record:
      frame_ms = 1000 * session.period() / window_lib.FPS
      # GIF delays are in hundredths of a second and players slow anything below 2 to 10.
      recorder = record_lib.Recorder(record, max(frame_ms, 20))
    if window is None:
      _headless(session, steps, scripted, recorder)
    else:
      window_lib.run(session, window, view.compose, scripted, steps, max_seconds)
    out = session.summary()
    if recorder is not None:
      out.update(record=recorder.close(), frames_written=recorder.count)
    if screenshot:
      if window is None:
        view.compose(session).save(screenshot)
      else:
        window.save(screenshot)
      out['screenshot'] = screenshot
    return dict(out, workdir=os.path.abspath(workdir))
  finally:
    if planner is not None:
      planner.close()
    if env is not None:
      env.close()
    if window is not None:
      window.close()
