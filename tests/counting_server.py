"""An HTTP server on 127.0.0.1 that counts the requests it gets.

Validators must never fetch a remote ``$ref`` (jsonschema-rs does by default); a test points
a reference here and asserts that ``requests`` stays empty.  One copy serves every such test.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any


class CountingServer:
    """Answers every GET with a small schema and records its path in ``requests``."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
