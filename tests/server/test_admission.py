"""predictors.server.admission on the real server: image uploads admitted a few at a time, the rest
refused at once with a time to retry, while forms keep being answered."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.harness import DIABETES, Site, multipart, payloads

pytestmark = pytest.mark.slow


def test_image_uploads_beyond_the_slots_get_503_with_retry_after_while_forms_run():
    """One image at a time and no waiting: of several uploads sent at once, some are refused, none fails."""
    site = Site(extra_env={"IMAGE_CONCURRENCY": "1", "IMAGE_QUEUE_SECONDS": "0"}).start()
    ecg = payloads()["ecg"]
    body, content_type = multipart("image", *ecg)
    headers = {"Authorization": f"Token {site.token}", "Content-Type": content_type}
    try:
        site.predict("ecg", ecg)  # loaded, so the uploads below measure only their own work
        start = threading.Barrier(7)

        def upload() -> tuple[int, dict, str | None]:
            start.wait()
            connection_status, data, _ = site.request("POST", "/api/v1/predict/ecg", body, headers)
            return connection_status, json.loads(data), None

        def form() -> int:
            start.wait()
            return site.predict("diabetes", DIABETES)[0]

        with ThreadPoolExecutor(7) as pool:
            uploads = [pool.submit(upload) for _ in range(6)]
            form_status = pool.submit(form).result()
            results = [future.result() for future in uploads]
        statuses = sorted(status for status, _, _ in results)
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
        refused = next(answer for status, answer, _ in results if status == 503)
        assert refused["error"]["code"] == "busy" and "try again" in refused["error"]["message"]
        assert form_status == 200
        # The refusal carries Retry-After: asked once more, alone, it is answered.
        status, answer, _ = site.predict("ecg", ecg)
        assert status == 200, answer
    finally:
        site.stop()


def test_refused_api_upload_says_when_to_retry():
    site = Site(extra_env={"IMAGE_CONCURRENCY": "1", "IMAGE_QUEUE_SECONDS": "0"}).start()
    body, content_type = multipart("image", *payloads()["ecg"])
    headers = {"Authorization": f"Token {site.token}", "Content-Type": content_type}
    try:
        import http.client

        seen = []

        def upload() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
            connection.request("POST", "/api/v1/predict/ecg", body, headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            seen.append((response.status, response.getheader("Retry-After"), answer.get("error", {}).get("code")))

        threads = [threading.Thread(target=upload) for _ in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        refusals = [(retry, code) for status, retry, code in seen if status == 503]
        assert {status for status, _, _ in seen} == {200, 503}, seen
        assert refusals and all(code == "busy" and int(retry) >= 1 for retry, code in refusals), seen
    finally:
        site.stop()


def test_an_upload_whose_client_leaves_while_queued_is_never_run():
    """Three uploads hold and queue for the one image slot; three more are sent and their clients hang
    up at once: those three are neither answered nor recorded, and the slot is not lost to them."""
    import socket
    import time

    site = Site(extra_env={"IMAGE_CONCURRENCY": "1", "IMAGE_QUEUE_SECONDS": "60", "LOG_LEVEL": "INFO"}).start()
    ecg = payloads()["ecg"]
    body, content_type = multipart("image", *ecg)
    request = (f"POST /api/v1/predict/ecg HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {site.token}\r\n"
               f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    count = ["shell", "-c", "from predictors.models import Prediction; print(Prediction.objects.count())"]
    try:
        site.predict("ecg", ecg)  # loaded; one record
        with ThreadPoolExecutor(3) as pool:
            kept = [pool.submit(site.predict, "ecg", ecg) for _ in range(3)]
            time.sleep(0.1)  # the three kept uploads hold and queue for the slot for several tenths of a second
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", site.port)) as leaving:
                    leaving.sendall(request)
                    leaving.shutdown(socket.SHUT_RDWR)
            assert [future.result()[0] for future in kept] == [200, 200, 200]
        deadline = time.monotonic() + 10
        while site.log_tail().count("not processed") < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert site.log_tail().count("not processed") == 3, site.log_tail()
        assert site.manage(*count).splitlines()[-1] == "4"
        assert site.predict("ecg", ecg)[0] == 200  # the slot is free for the next clinician
    finally:
        site.stop()
