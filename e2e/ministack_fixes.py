"""MiniStack with four of its differences from AWS corrected, all in what it sends or accepts.

Run by :class:`e2e.emulator.Emulator` with the emulator's own interpreter, as a script (it
imports nothing of this repository). ``make e2e`` lists both among the emulator's gaps.

- **API keys are regional.** MiniStack 1.5.33 resolves an ``x-api-key`` value against the keys of
  every region and takes the first it finds: with one value in both regions (one key per client,
  the service's design) a request to the second region meets the first region's key, which is in
  no usage plan of that API, and is refused. The value is looked up among the keys of the region
  that owns the API, as API Gateway does.
- **A proxy event names the API key that admitted the request.** API Gateway puts the key's id
  in ``requestContext.identity.apiKeyId`` (and its value in ``apiKey``); the function finds the
  request's client from that id. MiniStack 1.5.33 leaves both out, so every keyed request was a
  request of no client (403). They are added from the key the request carried, looked up in the
  API's region as above.
- **SNS -> Lambda events carry ``MessageAttributes`` and ``Subject``.** SNS sends ``{}`` and
  ``null`` when a message has none; MiniStack leaves the keys out, and Chalice's SNS event needs
  them, so every alarm notification CloudWatch fans out (with no attributes) failed in the
  orchestrator. They are added when missing, to the JSON envelope only (raw deliveries are the
  message itself).
- **An alarm notification names its alarm's ARN.** CloudWatch's message carries ``AlarmArn``,
  which the orchestrator reads the alarm's region from; MiniStack's leaves it out, so the
  orchestrator took every alarm it fanned out for something else. It is added, from the name,
  the account and the region the message carries.
"""

from __future__ import annotations

import json
from typing import Any

from ministack.services import apigateway_v1, sns


def _resolve_api_key_in_request_region(value: Any) -> Any:
    """The enabled key of this request's account and region whose value matches, or None."""
    if not value:
        return None
    for key_id in list(apigateway_v1._api_keys):  # scoped to the request's account and region
        key = apigateway_v1._api_keys.get(key_id)
        if key and key.get("value") == value and key.get("enabled", True):
            return key
    return None


_build_envelope = sns._build_envelope


def _envelope_as_sns_sends_it(
    topic_arn: str, msg_id: str, message: str, subject: str, message_attributes: dict[str, Any], raw: bool
) -> str:
    envelope = _build_envelope(topic_arn, msg_id, message, subject, message_attributes, raw)
    if raw:
        return str(envelope)
    fields = json.loads(envelope)
    fields.setdefault("Subject", None)
    fields.setdefault("MessageAttributes", {})
    return json.dumps(fields)


_fanout = sns._fanout


def _fanout_with_alarm_arn(
    topic_arn: str, msg_id: str, message: str, subject: str, *args: Any, **kwargs: Any
) -> Any:
    try:
        body = json.loads(message)
    except ValueError:
        body = None
    if (
        isinstance(body, dict)
        and {"AlarmName", "NewStateValue", "Trigger"} <= body.keys()
        and "AlarmArn" not in body
    ):
        body["AlarmArn"] = (
            f"arn:aws:cloudwatch:{body['Region']}:{body['AWSAccountId']}:alarm:{body['AlarmName']}"
        )
        message = json.dumps(body)
    return _fanout(topic_arn, msg_id, message, subject, *args, **kwargs)


_build_lambda_event_v1 = apigateway_v1._build_lambda_event_v1


def _lambda_event_naming_the_api_key(*args: Any, **kwargs: Any) -> Any:
    event = _build_lambda_event_v1(*args, **kwargs)
    headers = event.get("headers") or {}
    value = next((v for name, v in headers.items() if name.lower() == "x-api-key"), None)
    key = _resolve_api_key_in_request_region(value)
    if key is not None:
        event["requestContext"]["identity"].update({"apiKey": key.get("value"), "apiKeyId": key["id"]})
    return event


apigateway_v1._resolve_api_key = _resolve_api_key_in_request_region
apigateway_v1._build_lambda_event_v1 = _lambda_event_naming_the_api_key
sns._build_envelope = _envelope_as_sns_sends_it
sns._fanout = _fanout_with_alarm_arn

if __name__ == "__main__":
    from ministack.app import main

    main()
