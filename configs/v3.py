"""dreamer_jax's main configuration (DreamerV3 lineage, tinymon by default).

Run:   python -m experiments.dreamer --config=configs/v3.py --workdir=runs/v3
Preset: --config=configs/v3.py:small shrinks every model for tests and smoke runs on a CPU.
Override any field: --config.world_model.deter=256 --config.env.rom_path=/path/to/pokered.gb
Hardware: the default preset is sized for one GPU/TPU host; it also runs (slowly) on a CPU.

Each section belongs to one component; the library reads a section and passes plain values down.
"""

import ml_collections


def _env():
  return ml_collections.ConfigDict(dict(
      game='tinymon',           # 'tinymon' or 'pokered' (then rom_path is required).
      rom_path='',              # '' = the embedded tinymon ROM.
      state_path='',            # '' = the game's default start state.
      frames_per_step=24,       # Emulated frames per agent step...
      press_frames=8,           # ...with the button held for the first press_frames.
      max_episode_steps=20000,
      allow_unknown_rom='',     # '' refuses ROMs of unknown SHA-1; 'pokered'/'tinymon' reads them so.
  ))


def _reward():
  return ml_collections.ConfigDict(dict(
      badge=10.0,               # Per new badge.
      new_species=2.0,          # Per species caught for the first time.
      new_map=0.5,              # Per map id entered for the first time.
      battle_won=1.0,
      xp=0.01,                  # Per experience point gained.
      hp_lost=0.05,             # Per HP point lost (a penalty).
      no_progress=0.001,        # Per step with no progress signal (a penalty).
  ))


def _replay():
  return ml_collections.ConfigDict(dict(
      capacity=1_000_000,       # Steps kept (~6 GB on disk and in memory); oldest chunks evicted first.
      chunk_size=256,           # Steps per chunk file (the unit of atomic writes and of eviction).
      batch_size=16,
      sequence_length=64,
  ))


def _collector():
  return ml_collections.ConfigDict(dict(
      num_workers=2,            # Emulator processes stepped in lockstep.
      save_every=500,           # Steps between a worker's save states (~25 ms each): restart points.
  ))


def _world_model():
  return ml_collections.ConfigDict(dict(
      image_size=(72, 80),      # (144, 160) for full resolution.
      use_ram=True,             # False: the pixels-only ablation.
      cnn_depth=32,
      mlp_units=512,
      mlp_layers=2,
      deter=512,
      stoch=32,
      classes=32,
      unimix=0.01,
      latent_grad='straight_through',   # or 'gumbel'.
      gumbel_temp_start=1.0,
      gumbel_temp_end=0.5,
      gumbel_anneal_steps=10_000,
      image_loss='categorical',         # or 'mse'.
      reward_bins=255,
      kl_dyn=0.5,
      kl_rep=0.1,
      free_nats=1.0,
      loss_scales=ml_collections.ConfigDict(dict(
          image=1.0, reward=1.0, cont=1.0, ram_probe=1.0,
          prior_probe=1.0)),            # Probes on one-step prior states (0 turns it off).
      lr=1e-4,
      eps=1e-8,
      grad_clip=1000.0,
      batch_size=16,
      sequence_length=64,
      scan_unroll=1,            # RSSM time steps per scan iteration (a speed knob only).
      train_steps=100_000,
      log_every=50,
      checkpoint_every=500,
      eval_context=8,           # Observed steps before the open-loop rollout...
      eval_horizon=50,          # ...of this many imagined steps (the drift metric).
      eval_sequences=64,
      eval_latent='mode',       # Headline rollout: 'mode' (most likely latent) or 'sample'.
  ))


def _planner():
  return ml_collections.ConfigDict(dict(
      backend='auto',           # auto = gemini if a key is set, else openai if a key is set, else offline.
      gemini_model='gemini-2.0-flash',
      openai_model='gpt-4o',
      openai_base_url='',       # '' = the openai package's default; any OpenAI-compatible server works.
      gemini_base_url='',       # '' = the SDK's default (GOOGLE_GEMINI_BASE_URL also sets it).
      gemini_usd_per_mtok=(0.10, 0.40),   # (input, output) prices for the logged cost estimate.
      openai_usd_per_mtok=(2.50, 10.00),
      timeout_s=20.0,
      max_retries=3,            # Retries of a 429 or 5xx answer, with exponential backoff...
      retry_backoff_s=1.0,      # ...starting at this delay.
      breaker_failures=3,       # Consecutive failures that open the circuit breaker...
      breaker_cooldown_s=60.0,  # ...and how long the offline planner answers before trying again.
      replan_every=500,         # Agent steps between regular replans.
      replan_stuck_steps=200,   # steps_without_progress that trigger a replan.
      replan_on_map_change=True,
      replan_on_battle=True,
      replan_on_goal_reached=True,
      replan_min_steps=5,       # Least steps between two replans caused by a reached goal.
      retry_steps=50,           # Agent steps before a failed call is retried (the goal is kept).
      history_len=8,            # Recent goals and their outcomes shown to the LLM.
      heal_below=0.4,           # Offline planner: heal when the lead's HP falls below this fraction...
      min_party=3,              # ...catch until the party has this many mons...
      level_margin=2,           # ...and train until the lead out-levels the gym leader's best by this.
      scripted_goals='',        # JSON list of replies for backend='scripted'.
      goal_embedding_dim=64,
  ))


def get_config(arg=None):
  """Returns the config; `arg` picks a preset ('small' for tests and smoke runs)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.env = _env()
  config.reward = _reward()
  config.replay = _replay()
  config.collector = _collector()
  config.world_model = _world_model()
  config.planner = _planner()
  if arg == 'small':
    wm = config.world_model
    wm.cnn_depth, wm.mlp_units, wm.mlp_layers = 8, 64, 1
    wm.deter, wm.stoch, wm.classes = 64, 8, 8
    wm.batch_size, wm.sequence_length = 4, 16
    wm.lr, wm.log_every, wm.checkpoint_every = 1e-3, 10, 100   # Tiny models learn fast.
    wm.eval_context, wm.eval_horizon, wm.eval_sequences = 4, 12, 8
    config.replay.chunk_size = 32
  elif arg not in (None, ''):
    raise ValueError(f'unknown preset {arg!r} for configs/v3.py; expected "" or "small".')
  return config
