"""_webhook.py - helpers shared by the tests that run a real ansible-rulebook
webhook source and the real forwarder (test_forwarder.py,
test_event_driven.py): waiting until each answers."""
import urllib.error
import urllib.request

from _lab import wait_until


def _tail(log):
    return log.read_text(errors="replace")[-3000:]


def wait_webhook(proc, port, log, timeout=180):
    """Wait until the rulebook's webhook on 127.0.0.1:port accepts requests.

    Ready means it answers: a POST without the token gets 401 from the
    source's token check.  Fails at once when `proc` (the ansible-rulebook
    Popen) has exited, quoting the end of its `log` (a Path), and after
    `timeout` seconds otherwise."""
    def ready():
        assert proc.poll() is None, f"ansible-rulebook exited: {_tail(log)}"
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/probe", data=b"{}", method="POST"), timeout=2)
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            pass
        return False
    wait_until(ready, timeout, 0.5, f"the ansible-rulebook webhook on port {port} (401 without a token)",
               state=lambda: _tail(log))


def wait_readyz(proc, port, log, timeout=60):
    """Wait until the forwarder's health endpoint on 127.0.0.1:port answers
    /readyz with 200.  Fails at once when `proc` (the forwarder Popen) has
    exited, quoting the end of its `log`, and after `timeout` seconds otherwise."""
    def ready():
        assert proc.poll() is None, f"forwarder exited: {_tail(log)}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(ready, timeout, 0.2, f"forwarder /readyz on port {port}", state=lambda: _tail(log))
