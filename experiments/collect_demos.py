"""Records demonstrations (behaviour-cloning data) in the replay format.

  python -m experiments.collect_demos --policy random --episodes 2 --max_steps 200 --out demos/rnd
  python -m experiments.collect_demos --policy expert --episodes 20 --out demos/expert
  python -m experiments.collect_demos --policy explore --epsilon 0.25 --episodes 8 --out demos/explore
  python -m experiments.collect_demos --policy planner --epsilon 0.25 --episodes 4 --out demos/bc
  python -m experiments.collect_demos --policy human --episodes 1 --out demos/me \
      --config.env.game=pokered --config.env.rom_path=/path/to/pokered.gb \
      --config.env.state_path=/path/to/start.state

`human` opens a PyBoy window: arrows, A = a, B = s, START = Enter; close the window to stop.
Read the result with `dreamer_jax.envs.replay.Replay(DIR).episodes()`. A directory holds at most
config.replay.capacity steps: appending beyond it evicts the oldest chunks.
"""

from absl import flags

from dreamer_jax.envs import demos
from experiments import cli

_CONFIG = cli.define_config()
_POLICY = flags.DEFINE_enum('policy', 'random', list(demos.POLICIES), 'Who plays.')
_EPISODES = flags.DEFINE_integer('episodes', 1, 'Episodes to record.')
_OUT = flags.DEFINE_string('out', None, 'Replay directory to write (appended to if it exists).',
                           required=True)
_EPSILON = flags.DEFINE_float('epsilon', 0.25,
                              "--policy explore/planner: the chance of a random action instead of the expert's "
                              '(the expert\'s choice is still stored as the label).')
_MAX_STEPS = flags.DEFINE_integer('max_steps', None,
                                  'Steps per episode; default config.env.max_episode_steps.')


def main(argv):
  del argv
  config = _CONFIG.value
  result = demos.record(_POLICY.value, _EPISODES.value, _OUT.value, config.env, config.reward,
                        max_steps=_MAX_STEPS.value, seed=config.seed,
                        chunk_size=config.replay.chunk_size, epsilon=_EPSILON.value,
                        capacity=config.replay.capacity, planner_config=config.planner)
  print(f'recorded {result["episodes"]} episodes, {result["steps"]} steps, '
        f'in {result["directory"]}')


if __name__ == '__main__':
  cli.run(main)
