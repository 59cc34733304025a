"""LLM backends for System 2: Gemini through google-genai and any OpenAI-compatible server.

Each backend turns (prompt text, PNG screenshot) into the model's raw reply text plus token counts,
and turns every SDK or transport failure into one `CallError` whose message is safe to log. API keys
are read from the environment when a backend is built, handed to the SDK client and never stored on
our objects, written to a config or put in a message: `redact` scrubs every key the environment
holds from any text that might echo one back.
"""

import base64
import dataclasses
import logging
import os
import time

from dreamer_jax.errors import UserError
from dreamer_jax.planner import goals

log = logging.getLogger(__name__)

GEMINI_KEY_VARS = ('GEMINI_API_KEY', 'GOOGLE_API_KEY')
OPENAI_KEY_VARS = ('OPENAI_API_KEY',)
BACKENDS = ('auto', 'gemini', 'openai', 'offline', 'scripted')


class CallError(Exception):
  """A failed LLM call. `status` is the HTTP status or None; `retryable` is True for 429 and 5xx."""

  def __init__(self, message, status=None, retryable=False):
    super().__init__(redact(message))
    self.status = status
    self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class Reply:
  """A model's raw reply text and its token counts (0 when the server does not say)."""
  text: str
  input_tokens: int = 0
  output_tokens: int = 0


def env_key(names, environ=None):
  """The first non-empty environment variable among `names`, or None."""
  environ = os.environ if environ is None else environ
  for name in names:
    value = environ.get(name, '').strip()
    if value:
      return value
  return None


def redact(text):
  """`text` with every API key from the environment replaced by '[redacted]'."""
  text = str(text)
  for name in GEMINI_KEY_VARS + OPENAI_KEY_VARS:
    value = os.environ.get(name, '').strip()
    if len(value) >= 4:
      text = text.replace(value, '[redacted]')
  return text


def resolve_backend(name, environ=None):
  """Maps 'auto' to the first backend with a key (gemini, then openai), else offline."""
  if name not in BACKENDS:
    raise UserError(f'planner backend {name!r} is unknown; expected one of {", ".join(BACKENDS)}.')
  if name != 'auto':
    return name
  if env_key(GEMINI_KEY_VARS, environ):
    return 'gemini'
  if env_key(OPENAI_KEY_VARS, environ):
    return 'openai'
  return 'offline'


def _http_status_error(backend, status, detail):
  retryable = status == 429 or 500 <= status < 600
  message = f'{backend} answered HTTP {status} ({goals.short(detail, 80)})'
  return CallError(message, status, retryable)


def _transport_error(backend, error, timeout_s):
  if 'Timeout' in type(error).__name__:
    return CallError(f'{backend} call timed out after {timeout_s:g} s')
  return CallError(f'{backend} call failed ({type(error).__name__}: {goals.short(str(error), 80)})')


class GeminiBackend:
  """Gemini via the google-genai SDK: screenshot + prompt in, JSON constrained by ReplyModel out.

  Args:
    model: e.g. 'gemini-2.0-flash'.
    base_url: '' = the SDK's default (which honours GOOGLE_GEMINI_BASE_URL).
    timeout_s: per-request timeout.
  """
  name = 'gemini'

  def __init__(self, model, base_url='', timeout_s=20.0):
    key = env_key(GEMINI_KEY_VARS)
    if key is None:
      raise UserError('planner backend gemini needs an API key in GEMINI_API_KEY or '
                      'GOOGLE_API_KEY; none is set (use --backend offline to plan without a key).')
    from google import genai  # pylint: disable=g-import-not-at-top
    from google.genai import types  # pylint: disable=g-import-not-at-top
    self._types = types
    self._errors = genai.errors
    self.model = model
    self.base_url = base_url
    self.timeout_s = timeout_s
    # No SDK retries: the planner retries with its own backoff and counts failures for the breaker.
    options = types.HttpOptions(base_url=base_url or None, timeout=int(timeout_s * 1000))
    self._client = genai.Client(api_key=key, http_options=options)

  def __repr__(self):
    return f'GeminiBackend(model={self.model!r}, base_url={self.base_url!r})'

  def generate(self, prompt, png):
    types = self._types
    config = types.GenerateContentConfig(
        response_mime_type='application/json', response_schema=goals.ReplyModel, temperature=0.2)
    contents = [types.Part.from_bytes(data=png, mime_type='image/png'), prompt]
    try:
      response = self._client.models.generate_content(
          model=self.model, contents=contents, config=config)
      text = response.text or ''
    except self._errors.APIError as e:
      raise _http_status_error(self.name, e.code or 0, e.message or e.status or '') from None
    except Exception as e:  # pylint: disable=broad-except
      raise _transport_error(self.name, e, self.timeout_s) from None
    usage = response.usage_metadata
    return Reply(text=text,
                 input_tokens=(usage and usage.prompt_token_count) or 0,
                 output_tokens=(usage and usage.candidates_token_count) or 0)


class OpenAIBackend:
  """GPT-4o or any OpenAI-compatible server (a local one included) via the `openai` package.

  Args:
    model: e.g. 'gpt-4o'.
    base_url: '' = the package's default (which honours OPENAI_BASE_URL).
    timeout_s: per-request timeout.
  """
  name = 'openai'

  def __init__(self, model, base_url='', timeout_s=20.0):
    key = env_key(OPENAI_KEY_VARS)
    if key is None:
      raise UserError('planner backend openai needs an API key in OPENAI_API_KEY; none is set '
                      '(use --backend offline to plan without a key).')
    try:
      import openai  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise UserError('planner backend openai needs the optional package openai; install it with '
                      '`pip install openai` or choose another backend.') from None
    self._openai = openai
    self.model = model
    self.base_url = base_url
    self.timeout_s = timeout_s
    self._client = openai.OpenAI(api_key=key, base_url=base_url or None, timeout=timeout_s,
                                 max_retries=0)

  def __repr__(self):
    return f'OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})'

  def generate(self, prompt, png):
    image_url = 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')
    messages = [{'role': 'user', 'content': [
        {'type': 'text', 'text': prompt},
        {'type': 'image_url', 'image_url': {'url': image_url}}]}]
    response_format = {'type': 'json_schema', 'json_schema': {
        'name': 'planner_goal', 'schema': goals.ReplyModel.model_json_schema()}}
    openai = self._openai
    try:
      response = self._client.chat.completions.create(
          model=self.model, messages=messages, response_format=response_format, temperature=0.2)
      text = (response.choices[0].message.content or '') if response.choices else ''
    except openai.APIStatusError as e:
      raise _http_status_error(self.name, e.status_code, e.message) from None
    except Exception as e:  # pylint: disable=broad-except
      raise _transport_error(self.name, e, self.timeout_s) from None
    usage = response.usage
    return Reply(text=text, input_tokens=(usage and usage.prompt_tokens) or 0,
                 output_tokens=(usage and usage.completion_tokens) or 0)


def make_llm_backend(name, config):
  """The LLM backend `name` ('gemini' or 'openai') built from the planner config section."""
  if name == 'gemini':
    return GeminiBackend(config.gemini_model, config.gemini_base_url, config.timeout_s)
  if name == 'openai':
    return OpenAIBackend(config.openai_model, config.openai_base_url, config.timeout_s)
  raise UserError(f'planner backend {name!r} is not an LLM backend; expected gemini or openai.')


def generate_with_retries(backend, prompt, png, max_retries, backoff_s, sleep=time.sleep):
  """Calls `backend.generate`, retrying 429 and 5xx answers with exponential backoff.

  Raises:
    CallError: the last failure, once retries are used up or for a failure that is not retryable.
  """
  attempt = 0
  while True:
    try:
      return backend.generate(prompt, png)
    except CallError as e:
      if not e.retryable or attempt >= max_retries:
        raise
      delay = backoff_s * 2 ** attempt
      attempt += 1
      log.warning('planner: %s; retrying in %.2f s (retry %d of %d)', e, delay, attempt,
                  max_retries)
      sleep(delay)


def cost_usd(reply, usd_per_mtok):
  """Estimated cost of one call from its tokens and (input, output) prices per million tokens."""
  price_in, price_out = usd_per_mtok
  return (reply.input_tokens * price_in + reply.output_tokens * price_out) / 1e6
