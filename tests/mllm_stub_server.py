"""A stand-in MLLM server for the tests: speaks OpenAI chat completions (POST
/v1/chat/completions) and Ollama's /api/chat on loopback, logs every request body to a JSON-lines
file, and misbehaves on request, chosen by the model name:

  ok       -> a fixed description       slow      -> sleeps 3 s before answering
  error500 -> HTTP 500                  error400  -> HTTP 400
  badjson  -> a body that is not JSON   nocontent -> JSON without the message content
  trickle  -> the answer one byte every 0.5 s (never trips a per-read timeout)
  hang     -> reads the request and never answers (10 minutes)
  empty / long / refuse / offtopic -> an answer that is not a usable description

Run: python mllm_stub_server.py PORT LOGFILE   (prints "ready" when listening)
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = "A suburban scene with roads, houses and green fields; moderate texture, clear sky."


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = json.loads(body)
        with open(self.server.log_path, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": req}) + "\n")
        mode = req.get("model", "ok")
        if mode == "slow":
            time.sleep(3)
        if mode == "hang":
            time.sleep(600)
            return
        if mode in ("error500", "error400"):
            self.send_response(int(mode[-3:]))
            self.end_headers()
            return
        if self.path.endswith("/chat/completions"):
            out = {"choices": [{"message": {"role": "assistant", "content": REPLY}}]}
        elif self.path == "/api/chat":
            out = {"message": {"role": "assistant", "content": REPLY}, "done": True}
        else:
            self.send_response(404)
            self.end_headers()
            return
        bad = {"empty": "  ", "long": " ".join(["urban"] * 300),
               "refuse": "I'm sorry, I cannot see images in this conversation.",
               "offtopic": "The capital of France is Paris, known for its cuisine and art."}
        if mode in bad:
            if "choices" in out:
                out["choices"][0]["message"]["content"] = bad[mode]
            else:
                out["message"]["content"] = bad[mode]
        if mode == "nocontent":
            out = {"choices": []} if "choices" in out else {"done": True}
        data = b"<html>not json" if mode == "badjson" else json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "trickle":
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(0.5)
            return
        self.wfile.write(data)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.log_path = sys.argv[2]
    print("ready", flush=True)
    server.serve_forever()
