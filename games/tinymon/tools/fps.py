"""Frames per second of tinymon in PyBoy (no window, sound off), in the overworld and in battle.

  python games/tinymon/tools/fps.py [--frames 30000]

Runs from the repository root with the project's virtualenv (needs pyboy); pin it to one core with
`taskset -c 0` to compare with the 20,000 frames/s target.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

from dreamer_jax.envs import ram_map  # pylint: disable=wrong-import-position
from dreamer_jax.envs.emulator import A, DOWN, LEFT, NOOP, START, UP, Emulator  # pylint: disable=wrong-import-position


def measure(emu, frames):
  start = time.perf_counter()
  emu.tick(frames)
  return frames / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--frames', type=int, default=30000)
  args = parser.parse_args()
  emu = Emulator()
  emu.tick(120)
  emu.step(START)
  emu.step(NOOP)
  overworld = measure(emu, args.frames)
  start = time.perf_counter()
  steps = 0
  for action in [UP] * 11 + [LEFT] * 2:
    emu.step(action, render=False)
    steps += 1
  while not emu.memory[ram_map.IS_IN_BATTLE]:
    emu.step(UP if steps % 2 else DOWN, render=False)
    steps += 1
  walking = steps * emu.frames_per_step / (time.perf_counter() - start)
  for _ in range(3):
    emu.step(A)
  battle = measure(emu, args.frames)
  print(f'overworld idle {overworld:,.0f} frames/s; walking (agent steps, no render) {walking:,.0f} '
        f'frames/s; battle menu {battle:,.0f} frames/s')
  emu.close()


if __name__ == '__main__':
  main()
