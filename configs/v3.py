"""dreamer_jax's main configuration (DreamerV3 lineage, tinymon by default).

The preset is the text after ':' (`--config=configs/v3.py:NAME`); an unknown one is refused in one
sentence. Override any field: --config.world_model.deter=256 --config.env.rom_path=/path/to/pokered.gb

configs/v3.py (no preset): the full-size world model (21.8M parameters, 83 MB at float32).
  python -m experiments.train_world_model --config=configs/v3.py --workdir=runs/wm --replay=runs/demos
  Hardware: sized for one GPU/TPU host; on a 2-core CPU one 16x64 update takes ~5.6 s.

configs/v3.py:small: every model shrunk, for tests and smoke runs on a CPU.
  python -m experiments.train_world_model --config=configs/v3.py:small --workdir=/tmp/wm \
      --replay=runs/demos --steps=20
  Hardware: any CPU; an update takes ~0.1 s on 2 cores. Expected: the losses fall; no figure.

configs/v3.py:wm_tinymon: the tinymon world-model recipe behind README's drift figure (the default
model at lr 3e-4, 2,251 updates of 16x64).
  bash launch/world_model_tinymon.sh        # collects runs/demos, then trains and evaluates with:
  python -m experiments.train_world_model --config=configs/v3.py:wm_tinymon --workdir=runs/wm \
      --replay=runs/demos/wm_train
  python -m experiments.evaluate --workdir=runs/wm --replay=runs/demos/heldout_random --windows=256
  Hardware: 2 CPU cores, ~3.5 CPU hours of training (data collection ~3 minutes more); re-running
  resumes from the workdir's latest checkpoint.
  Expected: 50-step open-loop drift on held-out random play of 1.39 tiles with mode latents (2.31
  with sampled ones; standing still 3.37) after 2,251 updates.

The main command's presets (python -m experiments.dreamer --config=configs/v3.py:NAME --workdir=DIR;
re-running on the same DIR resumes):
configs/v3.py (no preset): the seed's sizes, tinymon, planner 'auto'. Hardware: one GPU/TPU host.
configs/v3.py:smoke: every phase once at the ':small' sizes (demos, world model, BC, critic
  warm-up, 2 cycles of collection with System 1 + System 2 and training, evaluation, checkpoints).
  Hardware: 2 CPU cores, ~2 minutes. Expected: it completes; no learning figure. CI runs it.
configs/v3.py:cpu: the longest useful run on 2 CPU cores: the 1536-wide latent with a lighter
  encoder/decoder, 16x32 batches, 2,000 world-model updates, 3,000 BC updates, 100 cycles.
  Hardware: 2 CPU cores, in sittings (--config.dreamer.minutes=120 each); ~1.1-2 s per world-model
  update here, so many hours in all (not yet run to the end). Measured with shorter budgets (1,600
  world-model updates, 2,500 BC, 8 cycles; bash launch/pretrained_tinymon.sh): 38 minutes; the
  agent after the RL cycles and its BC clone both 3 badges and 10 species median (pretrained/tinymon).
configs/v3.py:gpu: one GPU host (bash launch/gpu_host.sh): one emulator per core (the default
  collector.num_workers=0), 1,000 cycles of 2,048 real steps at train ratio 64, evaluations of 8
  games played at once. Hardware: one H100-class GPU + 16 cores.
configs/v3.py:tpu: a TPU VM slice (bash launch/tpu_vm.sh): batch 64 split over the chips,
  one emulator per core on each host, jax.distributed across hosts.
Expected results of the full cpu/gpu/tpu presets: not measured yet (README's results say what has
been: the shorter cpu recipe of launch/pretrained_tinymon.sh trains in 5.8 minutes on one H200).

Each section belongs to one component; the library reads a section and passes plain values down.
"""

import ml_collections

from dreamer_jax.errors import UserError

PRESETS = ('', 'small', 'wm_tinymon', 'smoke', 'cpu', 'gpu', 'tpu')


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
      # Steps a replay opened for writing keeps (~6 GB on disk and in memory); beyond it the oldest
      # chunks are evicted. Batches are sized by world_model.batch_size and sequence_length.
      capacity=1_000_000,
      chunk_size=256,           # Steps per chunk file (the unit of atomic writes and of eviction).
  ))


def _collector():
  return ml_collections.ConfigDict(dict(
      # Emulator processes stepped in lockstep (Collector.from_config): 0 = one per core
      # (os.cpu_count(), at most 64; collector.resolve_workers), or a fixed count.
      num_workers=0,
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
      # The terms the reward head learns (their weighted sum): the history-free ones, which a
      # 15-step imagined window can predict; () learns the replay's total reward.
      reward_terms=('badge', 'battle_won', 'xp', 'hp_lost'),
      # A probe of the species owned (the Pokédex count): imagination pays catches by its increase
      # (agent.species_reward), where the reward head cannot (a new species needs the history).
      dex_probe=True,
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
      level_margin=2,           # ...and train until the lead out-levels the gym leader's best by this;
      min_species=10,           # with every badge held it catches until this many species are owned.
                                # tinymon's evaluation and planner demos end at every badge and these.
      waypoints=True,           # A goal maps away is set as 'navigate' to the next map on the way.
                                # (A workdir whose config lacks these two plays as it was trained.)
      scripted_goals='',        # JSON list of replies for backend='scripted'.
      goal_embedding_dim=64,
  ))


def _agent():
  return ml_collections.ConfigDict(dict(
      layers=2, units=256,      # Actor and critic MLPs on [1536-wide feature, goal embedding].
      unimix=0.01,              # Uniform mix of the policy.
      # The operands' dtype of the frozen world model's products in cloning and imagination
      # (posterior starts, prior steps, heads; float32 accumulation, parameters and actor-critic):
      # 'bfloat16' is faster on GPU, TPU and CPUs with AVX512-BF16; 'float32' elsewhere.
      compute_dtype='bfloat16',
      critic='mse',             # 'mse' on λ-returns (the seed) or 'twohot' (DreamerV3).
      critic_bins=255,
      actor_loss='ppo',         # 'ppo' (clip, epochs over one imagined batch), 'grpo', 'reinforce'.
      horizon=15, gamma=0.99, lam=0.95,
      ent_coef=3e-4,            # Entropy bonus (all three actor losses).
      ppo_clip=0.2, ppo_epochs=4,
      grpo_group=4,             # Rollouts per start state for 'grpo'.
      slow_critic_rate=0.02,    # EMA rate of the slow critic...
      slow_critic_scale=1.0,    # ...and the weight of the regulariser towards it.
      bc_kl=0.0,                # Weight of KL(actor || frozen BC clone) during imagination training.
      bc_lr=3e-4, actor_lr=3e-5, critic_lr=3e-5, eps=1e-5, grad_clip=100.0,
      goal_reach=1.0,           # Goal reward: per imagined step at the goal...
      goal_shape=1.0,           # ...plus the potential-based distance term.
      task_reward=1.0,          # Weight of the reward head (the history-free reward terms).
      species_reward=2.0,       # Per species caught, read from the species probe (reward.new_species).
      hindsight=0.5,            # Share of start states given a hindsight navigate goal.
      batch_size=16, sequence_length=64,   # Real sequences per update (B * T start states).
      bc_steps=5_000,           # Behaviour-cloning updates...
      critic_warmup=500,        # ...critic-only updates on the clone's imagined returns...
      imagine_steps=50_000,     # ...then actor-critic updates in imagination.
      log_every=50, checkpoint_every=500,
  ))


def _dreamer():
  return ml_collections.ConfigDict(dict(
      # Labelled demonstrations: '' collects them into <workdir>/replay (the planner-driven expert,
      # demo_episodes at each epsilon, plus random play); a directory uses that replay instead.
      demos='',
      demo_epsilons=(0.0, 0.25, 0.5),
      demo_episodes=2,          # Per epsilon.
      demo_max_steps=20_000,
      # The share of species, drawn anew for each planner demonstration, that the recorded
      # controller catches under System 2's 'catch' goals alone (it fights them under others); the
      # rest it catches whenever met. With 0 it owns all 15 by the last badge, so no demonstration
      # shows the catches System 2 asks for after it. Measured with launch/pretrained_tinymon.sh
      # (10 episodes each, README): 0.5 -> its clone at every badge and 10 species in 10 of 10
      # (the shipped clone: 9 of 10), its RL agent in 6 of 10; 1.0 (then named
      # demo_catch_on_goal_only, with a System 2 since reverted): agent 6, clone 9 species median.
      demo_skip_catch=0.0,
      random_episodes=10, random_max_steps=1_000,
      wm_pretrain_steps=2_000,  # World-model updates on the demos before cloning (0 skips).
      # Then agent.bc_steps of cloning and agent.critic_warmup critic updates, then the cycles:
      cycles=200,
      collect_steps=512,        # Real steps per cycle (System 1 + System 2, collector.num_workers).
      train_ratio=32,           # Replayed steps per real step: wm updates = steps * ratio / (B*T).
      imagine_per_update=1,     # Actor-critic updates per world-model update.
      eval_every=10,            # Cycles between evaluations (and at the end).
      eval_episodes=3, eval_max_steps=20_000,
      # Evaluation games at once (one emulator process each, one batched network call for all;
      # 0: one per core; at most eval_episodes); 1 plays them one after another, in-process, which
      # is faster on 2 CPU cores (2 at once: 0.77x the steps/s, the learner's process the bottleneck).
      eval_workers=1,
      gif_steps=400,            # Agent steps of the evaluation GIF (0: none).
      minutes=0.0,              # Wall-clock budget of one sitting (0: none); re-run to continue.
      checkpoint_minutes=10.0,  # Inside long phases, a checkpoint at least this often.
      tensorboard=True,
  ))


def get_config(arg=None):
  """Returns the config; `arg` (the text after ':') names a preset from PRESETS."""
  preset = (arg or '').strip()
  if preset not in PRESETS:
    raise UserError(f'unknown preset {arg!r} for configs/v3.py; expected one of '
                    f'{", ".join(repr(p) for p in PRESETS)} (configs/v3.py:NAME).')
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.env = _env()
  config.reward = _reward()
  config.replay = _replay()
  config.collector = _collector()
  config.world_model = _world_model()
  config.planner = _planner()
  config.agent = _agent()
  config.dreamer = _dreamer()
  # One width for the goal vector everywhere: System 2 makes it, System 1 reads it.
  config.agent.goal_dim = config.planner.get_ref('goal_embedding_dim')
  if preset in ('small', 'smoke'):
    wm = config.world_model
    wm.cnn_depth, wm.mlp_units, wm.mlp_layers = 8, 64, 1
    wm.deter, wm.stoch, wm.classes = 64, 8, 8
    wm.batch_size, wm.sequence_length = 4, 16
    wm.lr, wm.log_every, wm.checkpoint_every = 1e-3, 10, 100   # Tiny models learn fast.
    wm.eval_context, wm.eval_horizon, wm.eval_sequences = 4, 12, 8
    config.replay.chunk_size = 32
    ag = config.agent
    ag.units, ag.layers, ag.batch_size, ag.sequence_length = 64, 1, 4, 16
    ag.bc_steps, ag.critic_warmup, ag.imagine_steps, ag.log_every, ag.checkpoint_every = 20, 5, 20, 10, 10
  if preset == 'smoke':
    _smoke(config)
  elif preset == 'wm_tinymon':
    # The README's drift figure: the default model at a higher learning rate, stopped where the
    # figure was measured.
    config.world_model.lr = 3e-4
    config.world_model.train_steps = 2_251
  elif preset == 'cpu':
    # The seed's latent (512 + 32x32 = the 1536-wide feature) with a lighter encoder/decoder and
    # shorter sequences, so that a 2-core CPU makes ~25 updates a minute.
    wm = config.world_model
    wm.cnn_depth, wm.mlp_units = 16, 256
    wm.batch_size, wm.sequence_length = 16, 32
    wm.lr = 3e-4
    ag = config.agent
    ag.batch_size, ag.sequence_length = 16, 32
    ag.bc_steps, ag.critic_warmup = 3_000, 200
    d = config.dreamer
    d.wm_pretrain_steps, d.cycles, d.eval_every, d.eval_episodes = 2_000, 100, 10, 3
  elif preset == 'gpu':
    d = config.dreamer
    d.demo_episodes, d.random_episodes = 4, 40
    d.wm_pretrain_steps, d.cycles, d.collect_steps, d.train_ratio = 10_000, 1_000, 2_048, 64
    d.eval_episodes, d.eval_workers = 8, 0   # All 8 games at once: an evaluation takes ~1 game's time.
    config.agent.bc_steps = 10_000
  elif preset == 'tpu':
    # Data parallel over the slice's chips: the batch is split across them (a multiple of the
    # device count), collectors on every host's cores.
    d = config.dreamer
    config.world_model.batch_size = config.agent.batch_size = 64
    d.demo_episodes, d.random_episodes = 8, 80
    d.wm_pretrain_steps, d.cycles, d.collect_steps, d.train_ratio = 10_000, 2_000, 4_096, 64
    d.eval_episodes, d.eval_workers = 8, 0
    config.agent.bc_steps = 10_000
  return config


def _smoke(config):
  """Every phase of experiments.dreamer once, at the ':small' sizes: a CI check of the wiring (and
  of resuming), not of learning."""
  config.collector.num_workers = 2
  d = config.dreamer
  d.demo_epsilons, d.demo_episodes, d.demo_max_steps = (0.25,), 1, 160
  d.random_episodes, d.random_max_steps = 1, 64
  d.wm_pretrain_steps, d.cycles, d.collect_steps, d.train_ratio = 12, 2, 32, 16
  d.eval_every, d.eval_episodes, d.eval_max_steps, d.gif_steps = 2, 2, 40, 40
  d.eval_workers = 2   # Both evaluation games at once (the batched path CI checks).
  ag = config.agent
  ag.bc_steps, ag.critic_warmup, ag.checkpoint_every, ag.log_every = 8, 4, 8, 4
  config.world_model.checkpoint_every = 6
