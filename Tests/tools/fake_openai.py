#!/usr/bin/env python3
"""A misbehaving OpenAI-compatible server for the remote backend's fault tests (Tests/lua/test_remote_faults.lua).

Listens on 127.0.0.1 at a free port, prints the port on standard output, and answers POST /v1/completions by the
prompt: "slow" sleeps 5 s before answering; "malformed" answers 200 with a body that is not JSON; "flaky500"
answers 500 on the first request, then succeeds; "flaky429" answers 429 twice, then succeeds; "retry-after"
answers 429 with Retry-After: 1 once; "auth" succeeds only with the header Authorization: Bearer $FAKE_KEY;
"die" exits the process without answering (a server killed mid-run); "noecho..." answers without log-probabilities,
"straddle..." and "scored..." with echoed ones (a token across the prefix/continuation boundary, and one on it);
"constrained..." answers with the constraint fields the request carried (as JSON text);
token ids starting with 900 are scored as vLLM's prompt_logprobs (echo refused);
anything else succeeds. Other POST routes (/tokenize) are 404s, as on a server without them. A success is a
completion whose text says how many times that prompt was asked. Each run ends after 60 s at most.
"""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self.reply(404, {"error": {"message": "no route", "type": "not_found_error"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path != "/v1/completions":
            return self.reply(404, {"error": {"message": "no route " + self.path, "type": "not_found_error"}})
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt[:1] == [900]:
            # A vLLM-like server that scores through prompt_logprobs only: token k (0-based, k >= 1) gets -0.25 * k,
            # beside a decoy entry; echo is refused.
            if body.get("echo") or "prompt_logprobs" not in body:
                return self.reply(400, {"error": {"message": "echo is not supported", "type": "invalid_request_error"}})
            plp = [None] + [{str(t): {"logprob": -0.25 * k, "rank": 1}, "99999": {"logprob": -9.0, "rank": 2}}
                            for k, t in enumerate(prompt) if k >= 1]
            return self.reply(200, {"choices": [{"index": 0, "text": "!", "finish_reason": "length",
                                                 "prompt_logprobs": plp}]})
        if isinstance(prompt, str) and prompt.startswith("constrained"):
            # The constraint fields the request carried, as the completion's text (their order kept).
            fields = {k: v for k, v in body.items() if k in ("grammar", "regex", "choices", "json_schema", "guided_regex",
                                                             "guided_choice", "guided_json", "guided_grammar", "response_format")}
            return self.reply(200, {"choices": [{"index": 0, "text": json.dumps(fields, separators=(",", ":")),
                                                 "finish_reason": "stop"}]})
        if isinstance(prompt, str) and prompt.startswith("noecho"):
            return self.reply(200, {"choices": [{"index": 0, "text": prompt + "!", "finish_reason": "length"}]})
        if isinstance(prompt, str) and prompt.startswith("straddle"):
            # "straddle" + " x": one token across the boundary at character 8.
            return self.reply(200, {"choices": [{"index": 0, "text": prompt, "finish_reason": "length", "logprobs": {
                "tokens": ["str", "addle x"], "token_logprobs": [None, -1.0], "top_logprobs": [None, None],
                "text_offset": [0, 3]}}]})
        if isinstance(prompt, str) and prompt.startswith("scored"):
            # "scored" + " text": tokens "scored", " te", "xt", then the generated "!".
            return self.reply(200, {"choices": [{"index": 0, "text": prompt + "!", "finish_reason": "length", "logprobs": {
                "tokens": ["scored", " te", "xt", "!"], "token_logprobs": [None, -1.5, -0.25, -3.0],
                "top_logprobs": [None, None, None, None], "text_offset": [0, 6, 9, 11]}}]})
        with lock:
            n = counts[prompt] = counts.get(prompt, 0) + 1
        if prompt == "slow":
            time.sleep(5)
        elif prompt == "malformed":
            return self.reply(200, b'{"choices": [{"text": "cut')
        elif prompt == "flaky500" and n == 1:
            return self.reply(500, {"error": {"message": "internal trouble", "type": "server_error"}})
        elif prompt == "flaky429" and n <= 2:
            return self.reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}})
        elif prompt == "retry-after" and n == 1:
            return self.reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, [("Retry-After", "1")])
        elif prompt == "always500":
            return self.reply(503, {"error": {"message": "overloaded", "type": "server_error"}})
        elif prompt == "auth" and self.headers.get("Authorization") != "Bearer " + os.environ.get("FAKE_KEY", "?"):
            return self.reply(401, {"error": {"message": "bad key", "type": "authentication_error"}})
        elif prompt == "die":
            os._exit(3)
        self.reply(200, {"id": "x", "object": "text_completion", "model": "fake",
                         "choices": [{"index": 0, "text": f"asked {n} times", "finish_reason": "length",
                                      "logprobs": {"tokens": ["asked"], "token_logprobs": [-0.5],
                                                   "top_logprobs": [{"asked": -0.5}], "text_offset": [0]}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Timer(60, lambda: os._exit(0)).start()
server.serve_forever()
