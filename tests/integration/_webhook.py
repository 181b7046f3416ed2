"""_webhook.py - helpers shared by the tests that run a real ansible-rulebook
webhook source (test_forwarder.py, test_event_driven.py)."""
import time
import urllib.error
import urllib.request


def wait_webhook(proc, port, log, timeout=180):
    """Wait until the rulebook's webhook on 127.0.0.1:port accepts requests.

    Ready means it answers: a POST without the token gets 401 from the
    source's token check.  Fails at once when `proc` (the ansible-rulebook
    Popen) has exited, quoting the end of its `log` (a Path), and after
    `timeout` seconds otherwise."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"ansible-rulebook exited: {log.read_text(errors='replace')[-3000:]}"
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/probe", data=b"{}", method="POST"), timeout=2)
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"ansible-rulebook webhook on port {port} did not come up in {timeout}s")
