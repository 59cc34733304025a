"""Writes the play picture to a file, one frame per agent step: GIF (pillow) or MP4 (imageio-ffmpeg,
only when it is installed; it is not a requirement of the project)."""

import importlib.util
import os

from PIL import Image

from dreamer_jax.errors import UserError

FORMATS = ('.gif', '.mp4')


def check_path(path):
  """The file's format ('.gif' or '.mp4'); UserError for another extension or a missing encoder."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in FORMATS:
    raise UserError(f'--record {path!r} has no known extension; expected a file ending in '
                    f'{" or ".join(FORMATS)}.')
  if ext == '.mp4' and importlib.util.find_spec('imageio_ffmpeg') is None:
    raise UserError(f'--record {path!r} needs an MP4 encoder (the imageio-ffmpeg package), which is '
                    'not installed; record a .gif instead or pip install imageio-ffmpeg.')
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise UserError(f'--record {path!r}: the directory {directory} does not exist; expected an '
                    'existing directory for the recording.')
  return ext


class Recorder:
  """Collects RGB PIL images and writes them to `path` on `close`, `frame_ms` each."""

  def __init__(self, path, frame_ms):
    self.path, self.frame_ms = path, int(frame_ms)
    self.ext = check_path(path)
    self.count = 0
    self._frames = []
    self._writer = None

  def add(self, image):
    self.count += 1
    if self.ext == '.gif':
      # One palette for every frame (the first frame's: the picture has few colours) lets the GIF
      # store only the box that changed from the frame before: about 3x smaller than a palette
      # per frame. Palette images are also a quarter of the RGB ones in memory.
      palette = self._frames[0] if self._frames else None
      self._frames.append(image.quantize(colors=64, palette=palette, dither=Image.Dither.NONE))
      return
    if self._writer is None:
      import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
      self._writer = imageio_ffmpeg.write_frames(self.path, image.size, fps=1000 / self.frame_ms,
                                                 macro_block_size=1)
      self._writer.send(None)
    self._writer.send(image.convert('RGB').tobytes())

  def close(self):
    """Writes the file; returns its path."""
    if self.ext == '.gif' and self._frames:
      # Every frame differs (the step counter is drawn), so pillow merges none of them and the GIF
      # holds exactly one frame per agent step.
      self._frames[0].save(self.path, save_all=True, append_images=self._frames[1:],
                           duration=self.frame_ms, loop=0, optimize=False)
      self._frames = []
    elif self._writer is not None:
      self._writer.close()
      self._writer = None
    return self.path
