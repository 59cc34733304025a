"""The LLM planner path with the REAL google-genai and openai clients against a local HTTP server.

The server on 127.0.0.1 plays a misbehaving model API: a good answer, prose, malformed JSON, an
unknown map, 429 then success, 500s until the breaker opens, an answer that never comes before the
timeout. Each case must end in a valid goal and a clear log line, with no exception reaching the
control loop. A slow answer is held on an Event until the test releases it, never on a sleep, so no
outcome depends on how fast the machine is.
"""

import http.server
import json
import logging
import sys
import threading
import time

import numpy as np
import pytest

from configs import v3
from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.errors import UserError
from dreamer_jax.planner import async_planner
from dreamer_jax.planner import backends
from dreamer_jax.planner import goals
from dreamer_jax.planner import run
from dreamer_jax.planner import scripted
from dreamer_jax.planner import triggers

FAKE_KEY = 'sk-FAKE-planner-key-7f3a9c'
INDEX = goals.WorldIndex(map_names={0: 'LEAF TOWN', 1: 'ROUTE 1', 7: 'LEAF GYM'},
                         map_sizes={0: (20, 18), 1: (10, 30), 7: (10, 10)})
STATE = dict(map_id=0, map_name='LEAF TOWN', x=5, y=6, badges=0, badge_bits=0, party_count=1,
             party_hp=[20], party_max_hp=[24], party_levels=[6], in_battle=0, dialog_open=False,
             pokedex_owned=1, pokedex_seen=1, money=3000, steps_without_progress=0)
FALLBACK = {'goal': 'Walk to the gym.', 'rationale': 'fallback',
            'goal_spec': {'kind': 'navigate', 'map': 'LEAF GYM', 'x': 4, 'y': 8}}
GOOD = {'goal': 'Challenge the leader.', 'rationale': 'first badge',
        'goal_spec': {'kind': 'battle', 'map': 'LEAF GYM', 'x': 4, 'y': 1}}


def _reply(spec_overrides=None, **overrides):
  reply = json.loads(json.dumps(GOOD))
  reply['goal_spec'].update(spec_overrides or {})
  reply.update(overrides)
  return json.dumps(reply)


class _Handler(http.server.BaseHTTPRequestHandler):
  """Answers generateContent (Gemini) and chat/completions (OpenAI) from the server's script.

  A script entry is (HTTP status, reply text, held): a held answer waits until the test sets
  `server.release`; `server.arrived` is set once a held request has reached the server.
  """

  def do_POST(self):  # pylint: disable=invalid-name
    request = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))))
    server = self.server
    with server.lock:
      server.requests += 1
      server.last_request = request
      status, text, held = server.script.pop(0) if server.script else server.default
    if held:
      server.arrived.set()
      server.release.wait(timeout=60.0)  # Only a safety limit: every test releases it.
    if status != 200:
      # A careless server that echoes the caller's key in its error text.
      echoed = self.headers.get('x-goog-api-key') or self.headers.get('authorization', '')
      body = {'error': {'code': status, 'message': f'try later ({echoed})',
                        'status': 'UNAVAILABLE'}}
    elif self.path.endswith('/chat/completions'):
      body = {'id': 'c1', 'object': 'chat.completion', 'created': 0, 'model': 'gpt-4o',
              'choices': [{'index': 0, 'finish_reason': 'stop',
                           'message': {'role': 'assistant', 'content': text}}],
              'usage': {'prompt_tokens': 1200, 'completion_tokens': 40, 'total_tokens': 1240}}
    else:
      body = {'candidates': [{'content': {'role': 'model', 'parts': [{'text': text}]},
                              'finishReason': 'STOP', 'index': 0}],
              'usageMetadata': {'promptTokenCount': 1200, 'candidatesTokenCount': 40,
                                'totalTokenCount': 1240}}
    data = json.dumps(body).encode()
    try:
      self.send_response(status)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)
    except OSError:  # The client gave up (a timeout case).
      pass

  def log_message(self, *args):
    del args


@pytest.fixture(scope='module')
def server():
  srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  srv.daemon_threads = True
  srv.lock = threading.Lock()
  thread = threading.Thread(target=srv.serve_forever, daemon=True)
  thread.start()
  yield srv
  srv.shutdown()
  srv.server_close()


@pytest.fixture
def api(server, monkeypatch):
  """Resets the server's script; sets fake keys; yields (server, base URLs per backend)."""
  server.script, server.default, server.requests = [], (200, _reply(), False), 0
  server.arrived, server.release = threading.Event(), threading.Event()
  monkeypatch.setenv('GEMINI_API_KEY', FAKE_KEY)
  monkeypatch.setenv('OPENAI_API_KEY', FAKE_KEY)
  monkeypatch.delenv('GOOGLE_API_KEY', raising=False)
  url = f'http://127.0.0.1:{server.server_port}'
  yield server, {'gemini': url, 'openai': url + '/v1'}
  server.release.set()  # Frees handlers still holding an answer the client gave up on.


def _backend(name, urls, timeout_s=2.0):
  if name == 'gemini':
    return backends.GeminiBackend('gemini-2.0-flash', urls[name], timeout_s)
  return backends.OpenAIBackend('gpt-4o', urls[name], timeout_s)


def _planner(llm, asynchronous=False, **kwargs):
  cfg = triggers.TriggerConfig(replan_every=0, stuck_steps=0, retry_steps=1)
  defaults = dict(trigger_cfg=cfg, max_retries=1, backoff_s=0.01, breaker_failures=2,
                  breaker_cooldown_s=60.0, usd_per_mtok=(0.1, 0.4), asynchronous=asynchronous)
  defaults.update(kwargs)
  return async_planner.Planner(INDEX, scripted.ScriptedPlanner([FALLBACK]), llm, **defaults)


FRAME = np.random.default_rng(0).integers(0, 4, (144, 160)).astype(np.uint8)
CASES = {
    # name: (server script, expected goal source, expected log text)
    'good': ([(200, _reply(), False)], 'llm', 'goal \'Challenge the leader.\''),
    'prose': ([(200, 'You should go to the gym and fight the leader.', False)], 'scripted',
              'reply is prose, not a JSON object'),
    'malformed': ([(200, '{"goal": "Fight", "goal_spec": {"kind": ', False)], 'scripted',
                  'reply is malformed JSON'),
    'unknown_map': ([(200, _reply({'map': 'ATLANTIS'}), False)], 'scripted',
                    "unknown map 'ATLANTIS'"),
    'outside_map': ([(200, _reply({'x': 40, 'y': 3}), False)], 'scripted', 'outside map'),
    'too_long': ([(200, _reply(goal='x' * 500), False)], 'scripted', 'at most 200 characters'),
    'unknown_kind': ([(200, _reply({'kind': 'teleport'}), False)], 'scripted', 'goal_spec.kind'),
    'rate_limited': ([(429, '', False), (200, _reply(), False)], 'llm', 'HTTP 429'),
    # Held until the test ends (a retry's answer too): the call can only end by the 0.5 s timeout.
    'slow': ([(200, _reply(), True)] * 2, 'scripted', 'timed out after 0.5 s'),
}


@pytest.mark.parametrize('backend', ['gemini', 'openai'])
@pytest.mark.parametrize('case', list(CASES))
def test_each_server_behaviour_ends_in_a_valid_goal(api, caplog, backend, case):
  server, urls = api
  script, source, expected = CASES[case]
  server.script = list(script)
  planner = _planner(_backend(backend, urls, timeout_s=0.5 if case == 'slow' else 2.0))
  with caplog.at_level(logging.INFO, logger='dreamer_jax.planner'):
    plan = planner.poll(STATE, FRAME)     # Must not raise, whatever the server does.
  assert expected in caplog.text
  assert plan is not None
  assert plan.source == (backend if source == 'llm' else 'scripted')
  goals.check_goal_spec(plan.goal_spec, INDEX)
  np.testing.assert_array_equal(plan.goal_embedding,
                                goals.goal_embedding(plan.goal_spec, INDEX.map_names, 64))
  if source == 'llm':
    assert plan.goal_spec == GOOD['goal_spec']
    assert planner.stats['input_tokens'] == 1200 and planner.stats['cost_usd'] > 0
  assert FAKE_KEY not in caplog.text


@pytest.mark.parametrize('backend', ['gemini', 'openai'])
def test_server_errors_open_the_breaker_then_offline_answers_until_cooldown(api, caplog, backend):
  server, urls = api
  server.default = (500, '', False)
  now = [0.0]
  planner = _planner(_backend(backend, urls), clock=lambda: now[0])
  with caplog.at_level(logging.INFO, logger='dreamer_jax.planner'):
    for _ in range(6):
      plan = planner.poll(STATE, FRAME)
  assert 'circuit breaker open after 2 consecutive failures' in caplog.text
  assert plan.source == 'scripted'
  calls_while_open = server.requests
  assert calls_while_open == 4        # 2 failed calls x (1 try + 1 retry); none once open.
  assert FAKE_KEY not in caplog.text and '[redacted]' in caplog.text
  # After the cooldown one call goes through again and, the server healthy, the LLM goal returns.
  server.default = (200, _reply(), False)
  now[0] = 61.0
  for _ in range(2):
    plan = planner.poll(STATE, FRAME)
  assert server.requests > calls_while_open
  assert plan.source == backend


def test_a_failed_call_keeps_a_goal_that_is_not_yet_reached(api, caplog):
  server, urls = api
  planner = _planner(_backend('gemini', urls))
  assert planner.poll(STATE, FRAME).source == 'gemini'
  server.script = [(200, 'no idea', False)]
  planner.triggers.failed()     # Force a replan on the next step.
  with caplog.at_level(logging.INFO, logger='dreamer_jax.planner'):
    plan = planner.poll(STATE, FRAME)
  assert 'keeping goal' in caplog.text
  assert plan.source == 'gemini' and plan.goal_spec == GOOD['goal_spec']


def test_planner_state_round_trips_through_json_and_bad_states_are_one_sentence(api):
  server, urls = api
  planner = _planner(_backend('gemini', urls), history_len=2)
  server.script = [(200, _reply(), False), (200, 'no idea', False)] + [(500, '', False)] * 2
  for _ in range(3):
    planner.poll(STATE, FRAME)
    planner.triggers.failed()    # Force a replan on the next step.
  planner.poll(dict(STATE, map_id=1, map_name='ROUTE 1'), FRAME)
  saved = json.loads(json.dumps(planner.state_dict()))   # What progress.json holds.
  assert saved['stats']['calls'] == 3 and saved['stats']['failed'] == 1   # Then the breaker.
  assert saved['stats']['rejected'] == 1 and saved['stats']['cost_usd'] > 0
  assert saved['goal_count'] == planner.goal_count >= 2 and saved['history']
  restored = _planner(_backend('gemini', urls), history_len=2)
  restored.load_state_dict(saved)
  assert restored.state_dict() == saved and restored.stats == planner.stats
  assert list(restored.history) == list(planner.history)
  short = _planner(_backend('gemini', urls), history_len=1)   # Keeps the newest goals only.
  short.load_state_dict(dict(saved, history=saved['history'] * 2))
  assert list(short.history) == saved['history'][-1:]
  for bad in ([], {'stats': {}}, dict(saved, goal_count=-1), dict(saved, goal_count=True),
              dict(saved, stats=dict(saved['stats'], calls='4')), dict(saved, history=[{}]),
              dict(saved, stats={'calls': 1})):
    with pytest.raises(UserError, match=r'^planner state .* is malformed; expected Planner'
                       r"\.state_dict\(\)'s .*\]\}\.$"):
      restored.load_state_dict(bad)
  assert restored.state_dict() == saved   # A refused state changes nothing.


@pytest.mark.parametrize('backend', ['gemini', 'openai'])
def test_control_loop_keeps_stepping_while_a_slow_call_is_in_flight(api, backend):
  server, urls = api
  server.script = [(200, _reply(), True)]
  # The 60 s timeout is only a safety limit: the answer comes when the test releases it.
  planner = _planner(_backend(backend, urls, timeout_s=60.0), asynchronous=True)
  try:
    first = planner.poll(STATE, FRAME)
    assert first.source == 'scripted'    # System 1 acts on the rule-based goal meanwhile.
    assert server.arrived.wait(timeout=60.0)
    # The LLM call is at the server and cannot answer: every step returns at once, on the old goal.
    for _ in range(50):
      assert planner.poll(STATE, FRAME) is first and planner.in_flight
    assert planner.triggers.step == 51 and server.requests == 1
    server.release.set()
    plan, deadline = first, time.monotonic() + 60.0  # Only a safety limit.
    while planner.in_flight and time.monotonic() < deadline:
      plan = planner.poll(STATE, FRAME)
      time.sleep(0.001)
    assert not planner.in_flight
    assert plan is planner.current and plan.source == backend and plan.goal == GOOD['goal']
  finally:
    planner.close()


def test_keys_never_appear_in_reprs_errors_or_logs(api, caplog):
  server, urls = api
  server.default = (500, '', False)
  llm = _backend('gemini', urls)
  planner = _planner(llm)
  with caplog.at_level(logging.DEBUG):
    planner.poll(STATE, FRAME)
  with pytest.raises(backends.CallError) as info:
    llm.generate('prompt', b'png')
  for text in (repr(llm), repr(planner), str(info.value), caplog.text):
    assert FAKE_KEY not in text


@pytest.mark.parametrize('backend,variables', [('gemini', 'GEMINI_API_KEY or GOOGLE_API_KEY'),
                                               ('openai', 'OPENAI_API_KEY')])
def test_a_missing_key_is_one_clear_sentence(monkeypatch, backend, variables):
  for name in backends.GEMINI_KEY_VARS + backends.OPENAI_KEY_VARS:
    monkeypatch.delenv(name, raising=False)
  with pytest.raises(UserError, match=variables):
    _backend(backend, {'gemini': 'http://127.0.0.1:9', 'openai': 'http://127.0.0.1:9/v1'})


def test_auto_picks_the_first_backend_with_a_key():
  assert backends.resolve_backend('auto', {}) == 'offline'
  assert backends.resolve_backend('auto', {'OPENAI_API_KEY': 'k'}) == 'openai'
  both = {'GOOGLE_API_KEY': 'k', 'OPENAI_API_KEY': 'k'}
  assert backends.resolve_backend('auto', both) == 'gemini'
  assert backends.resolve_backend('scripted', {'GEMINI_API_KEY': 'k'}) == 'scripted'
  with pytest.raises(UserError, match='unknown'):
    backends.resolve_backend('claude', {})


def test_gemini_planner_sends_screen_and_knowledge_and_falls_back_to_offline(api, caplog):
  server, urls = api
  config = v3.get_config()
  config.planner.gemini_base_url = urls['gemini']
  config.planner.max_retries, config.planner.retry_backoff_s = 0, 0.01
  config.planner.breaker_failures, config.planner.retry_steps = 1, 1
  server.script = [(200, _reply(), False)]
  planner = async_planner.build_planner(config.planner, tinymon_world.load_world(), 'gemini',
                                        asynchronous=False)
  state = dict(STATE, map_id=0, map_name='LEAF TOWN', x=7, y=8)
  assert planner.poll(state, FRAME).source == 'gemini'
  parts = server.last_request['contents'][0]['parts']
  assert parts[0]['inlineData']['mime_type'] == 'image/png'
  assert 'LEAF GYM' in parts[1]['text'] and '"current_goal"' in parts[1]['text']
  assert server.last_request['generationConfig']['responseMimeType'] == 'application/json'
  server.default = (500, '', False)
  planner.triggers.failed()
  with caplog.at_level(logging.INFO, logger='dreamer_jax.planner'):
    for _ in range(3):
      plan = planner.poll(state, FRAME)
  assert 'circuit breaker open' in caplog.text and plan.source == 'offline'
  # Keys live only in the environment: never in the config that a run writes to its workdir.
  assert FAKE_KEY not in config.to_json() and FAKE_KEY not in repr(planner)


def test_openai_backend_without_the_package_is_one_clear_sentence(api, monkeypatch):
  _, urls = api
  monkeypatch.setitem(sys.modules, 'openai', None)    # `import openai` now raises ImportError.
  with pytest.raises(UserError, match='optional package openai'):
    _backend('openai', urls)


def test_play_applies_llm_goals_in_the_running_game(api):
  _, urls = api
  config = v3.get_config()
  config.planner.gemini_base_url = urls['gemini']
  result = run.play(config, max_steps=150, backend='gemini', progress=False)
  assert result['steps'] == 150
  assert result['last_goal'] == GOOD['goal']
