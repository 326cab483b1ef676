"""API clients of the payment service: one key value per client, accepted by both regions.

A client's value lives in its secret (``payments/{suffix}/clients/{name}``) in the primary region,
replicated by Secrets Manager to the secondary; each region's API Gateway holds an API key with
that value, in the client's own usage plan (its throttle). ``payments-dr clients``:

- ``create NAME``: the secret (a fresh 40-character value), then in each region the key and plan;
- ``rotate NAME``: a new value in the secret, and in each region a second key with it: the old
  value keeps working until ``revoke NAME --previous``, so a merchant can roll over;
- ``revoke NAME``: every key of the client in each region, its plans and its secret, gone;
- ``list``: every client each region knows, its keys and throttle, and whether the region holds
  the secret's current value.

Each acts on both regions and says, region by region, what it did; a region it cannot reach is
reported as failed (the command then exits 1), never skipped. Run again, each command completes
what a failed region missed. Values are never printed unless asked for (``--show-key``).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.names import API_STAGE, ResourceNames
from chalicelib.schema import (
    API_KEY_SECRET_FIELD,
    CANARY_CLIENT,
    CLIENT_NAME_PATTERN,
    DEFAULT_CLIENT_THROTTLE,
    ClientsTableSchema,
    ClientThrottle,
)

ClientFactory = Callable[[str, str], Any]
API_KEY_LENGTH = 40
KEY_ALPHABET = string.ascii_letters + string.digits


def new_key_value() -> str:
    """A fresh API key value: 40 letters and digits (API Gateway takes 20 to 128 characters)."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(API_KEY_LENGTH))


def directory_entry(api_key_id: str, client: str) -> dict[str, dict[str, str]]:
    """The client directory's item saying that the key ``api_key_id`` belongs to ``client``."""
    return {
        ClientsTableSchema.PARTITION_KEY: {"S": api_key_id},
        ClientsTableSchema.CLIENT_ATTRIBUTE: {"S": client},
    }


class InvalidClientCommand(ValueError):
    """A client command that cannot run as asked (a bad name, a client that exists or does not)."""


@dataclass
class RegionOutcome:
    """What one command did in one region."""

    region: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"  {self.region}: {'ok' if self.ok else 'FAILED'}  {self.detail}"


@dataclass
class ClientReport:
    """What one command did for one client, region by region (and the value it made, if any)."""

    client: str
    action: str
    outcomes: list[RegionOutcome] = field(default_factory=list)
    value: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)

    def render(self, *, show_key: bool = False, secret_name: str = "") -> str:
        lines = [f"{self.action} {self.client}: {'done' if self.ok else 'INCOMPLETE (run it again)'}"]
        lines += [outcome.line() for outcome in self.outcomes]
        if self.value is not None:
            lines.append(
                f"  key value: {self.value}"
                if show_key
                else f"  key value: in the secret {secret_name} (aws secretsmanager get-secret-value, "
                "or --show-key)"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ClientView:
    """One client as one region holds it."""

    client: str
    keys: int
    enabled: int
    holds_current_value: bool
    throttle: ClientThrottle | None


class ClientRegistry:
    """Creates, rotates, revokes and lists API clients in both regions of one deployment."""

    def __init__(self, *, names: ResourceNames, regions: tuple[str, str], client: ClientFactory) -> None:
        """``regions``: the primary (where secrets are written) and the secondary (their replica)."""
        self._names = names
        self._primary, self._secondary = regions
        self._client = client

    @property
    def regions(self) -> tuple[str, str]:
        return (self._primary, self._secondary)

    @property
    def names(self) -> ResourceNames:
        return self._names

    def secret_name(self, client: str) -> str:
        return self._names.client_secret(client)

    def create(
        self, client: str, *, throttle: ClientThrottle = DEFAULT_CLIENT_THROTTLE, value: str | None = None
    ) -> ClientReport:
        """A new client: its secret (replicated), then its key and usage plan in each region."""
        _check_name(client)
        report = ClientReport(client, "create")
        secrets_primary = self._client("secretsmanager", self._primary)
        value = value or new_key_value()
        try:
            secrets_primary.create_secret(
                Name=self.secret_name(client),
                Description=f"API key value of the payment client {client}",
                KmsKeyId=self._names.data_key_alias,
                SecretString=json.dumps({"client": client, API_KEY_SECRET_FIELD: value}),
                AddReplicaRegions=[{"Region": self._secondary, "KmsKeyId": self._names.data_key_alias}],
            )
        except ClientError as error:
            if _code(error) != "ResourceExistsException":
                report.outcomes.append(RegionOutcome(self._primary, False, f"secret: {_reason(error)}"))
                return report
            # Created before, perhaps by a run that failed in a region: complete it with its value.
            value = self._value_in(self._primary, client)
        except BotoCoreError as error:
            report.outcomes.append(RegionOutcome(self._primary, False, f"secret: {_reason(error)}"))
            return report
        return self._with_key_everywhere(report, client, value, throttle)

    def rotate(self, client: str) -> ClientReport:
        """A new value for ``client``: in its secret, and as a second key in each region."""
        _check_name(client)
        _not_the_stacks_own(client)
        report = ClientReport(client, "rotate")
        value = new_key_value()
        try:
            self._client("secretsmanager", self._primary).put_secret_value(
                SecretId=self.secret_name(client),
                SecretString=json.dumps({"client": client, API_KEY_SECRET_FIELD: value}),
            )
        except (ClientError, BotoCoreError) as error:
            report.outcomes.append(RegionOutcome(self._primary, False, f"secret: {_reason(error)}"))
            return report
        return self._with_key_everywhere(report, client, value, DEFAULT_CLIENT_THROTTLE)

    def _with_key_everywhere(
        self, report: ClientReport, client: str, value: str, throttle: ClientThrottle
    ) -> ClientReport:
        """``report`` once each region holds a key with ``value`` (its secret already does)."""
        report.value = value
        for region in self.regions:
            report.outcomes.append(self._ensure_key(region, client, value, throttle))
        return report

    def revoke(self, client: str, *, previous_only: bool = False) -> ClientReport:
        """Refuse ``client`` in both regions; ``previous_only``: only its values older than the current."""
        _check_name(client)
        _not_the_stacks_own(client)
        report = ClientReport(client, "revoke previous keys of" if previous_only else "revoke")
        current = None
        if previous_only:
            try:
                current = self._value_in(self._primary, client)
            except (ClientError, BotoCoreError) as error:
                report.outcomes.append(RegionOutcome(self._primary, False, f"secret: {_reason(error)}"))
                return report
        for region in self.regions:
            report.outcomes.append(self._revoke_in(region, client, keep_value=current))
        if not previous_only and report.ok:
            report.outcomes.append(self._delete_secret(client))
        return report

    def listing(self) -> dict[str, dict[str, ClientView | str]]:
        """Every client by name, and how each region holds it (or why the region could not say)."""
        found: dict[str, dict[str, ClientView | str]] = {}
        for region in self.regions:
            try:
                views = self._views_in(region)
            except (ClientError, BotoCoreError) as error:
                for clients in found.values():
                    clients[region] = f"unreachable: {_reason(error)}"
                found.setdefault("*", {})[region] = f"unreachable: {_reason(error)}"
                continue
            for view in views:
                found.setdefault(view.client, {})[region] = view
        return found

    def _value_in(self, region: str, client: str) -> str:
        text = self._client("secretsmanager", region).get_secret_value(SecretId=self.secret_name(client))[
            "SecretString"
        ]
        return str(json.loads(text)[API_KEY_SECRET_FIELD])

    def _keys(self, region: str, client: str) -> list[dict[str, Any]]:
        name = self._names.client_api_key(client)
        return [k for k in self._all_keys(region, name) if k.get("name") == name]

    def _all_keys(self, region: str, name_query: str) -> Iterator[dict[str, Any]]:
        pages = self._client("apigateway", region).get_paginator("get_api_keys")
        for page in pages.paginate(nameQuery=name_query, includeValues=True):
            yield from page.get("items", [])

    def _plans(self, region: str) -> dict[str, dict[str, Any]]:
        """Every usage plan in ``region``, by name (one listing for all the clients asked about)."""
        pages = self._client("apigateway", region).get_paginator("get_usage_plans")
        return {
            str(plan.get("name")): dict(plan) for page in pages.paginate() for plan in page.get("items", [])
        }

    def _plan(self, region: str, client: str) -> dict[str, Any] | None:
        return self._plans(region).get(self._names.client_usage_plan(client))

    def _api_stages(self, region: str) -> list[dict[str, str]]:
        """The payment API's stage in ``region`` (none where no API Gateway serves it: ``make run``)."""
        apis = self._client("apigateway", region).get_rest_apis(limit=500).get("items", [])
        return [{"apiId": a["id"], "stage": API_STAGE} for a in apis if a.get("name") == self._names.rest_api]

    def _ensure_key(self, region: str, client: str, value: str, throttle: ClientThrottle) -> RegionOutcome:
        """``client``'s plan in ``region`` (made with ``throttle`` if missing), and a key in it holding ``value``."""
        apigateway = self._client("apigateway", region)
        try:
            plan = self._plan(region, client)
            if plan is None:
                plan = apigateway.create_usage_plan(
                    name=self._names.client_usage_plan(client),
                    description=f"What the payment client {client} may send",
                    apiStages=self._api_stages(region),
                    throttle={"rateLimit": throttle.rate_limit, "burstLimit": throttle.burst_limit},
                )
            keys = self._keys(region, client)
            if any(k.get("value") == value for k in keys):
                # A run that failed before registering them: the directory is completed.
                self._register(region, client, keys)
                return RegionOutcome(region, True, f"key already holds the current value ({len(keys)} keys)")
            key = apigateway.create_api_key(
                name=self._names.client_api_key(client),
                description=f"Payment client {client}; value from the secret {self.secret_name(client)}",
                enabled=True,
                value=value,
            )
            # In the directory before the key is in a plan: its first admitted request finds its client.
            self._register(region, client, [key])
            apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        except (ClientError, BotoCoreError) as error:
            return RegionOutcome(region, False, _reason(error))
        held = _throttle_of(plan) or throttle
        return RegionOutcome(
            region,
            True,
            f"key {key['id']} in plan {plan['id']} ({held.rate_limit:g}/s, burst {held.burst_limit}); "
            f"{len(keys) + 1} key(s)",
        )

    def _register(self, region: str, client: str, keys: list[dict[str, Any]]) -> None:
        """Name ``client`` as the owner of ``keys`` in ``region``'s client directory.

        The function reads the owner of each request's key there: the client owns the payments,
        whichever of its keys (one per region, and one more per rotation) sent them.
        """
        dynamodb = self._client("dynamodb", region)
        for key in keys:
            dynamodb.put_item(
                TableName=self._names.clients_table,
                Item=directory_entry(str(key["id"]), client),
            )

    def _revoke_in(self, region: str, client: str, *, keep_value: str | None) -> RegionOutcome:
        apigateway = self._client("apigateway", region)
        try:
            doomed = [
                k for k in self._keys(region, client) if keep_value is None or k.get("value") != keep_value
            ]
            directory = self._client("dynamodb", region)
            for key in doomed:
                apigateway.delete_api_key(apiKey=key["id"])
                # Once API Gateway refuses the key; an id is never given to another key.
                directory.delete_item(
                    TableName=self._names.clients_table,
                    Key={ClientsTableSchema.PARTITION_KEY: {"S": key["id"]}},
                )
            plan = None if keep_value is not None else self._plan(region, client)
            if plan is not None:
                for stage in plan.get("apiStages", []):
                    apigateway.update_usage_plan(
                        usagePlanId=plan["id"],
                        patchOperations=[
                            {
                                "op": "remove",
                                "path": "/apiStages",
                                "value": f"{stage['apiId']}:{stage['stage']}",
                            }
                        ],
                    )
                apigateway.delete_usage_plan(usagePlanId=plan["id"])
        except (ClientError, BotoCoreError) as error:
            return RegionOutcome(region, False, _reason(error))
        return RegionOutcome(
            region,
            True,
            f"{len(doomed)} key(s) deleted" + (", usage plan deleted" if plan is not None else ""),
        )

    def _delete_secret(self, client: str) -> RegionOutcome:
        """The secret and its replica: AWS deletes a primary only once its replicas are removed."""
        secrets_primary = self._client("secretsmanager", self._primary)
        try:
            try:
                secrets_primary.remove_regions_from_replication(
                    SecretId=self.secret_name(client), RemoveReplicaRegions=[self._secondary]
                )
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return RegionOutcome(self._primary, True, "no secret left to delete")
                # Deleting may still work (a store that drops replicas with their primary); if it
                # does not, its error is what the operator sees.
            secrets_primary.delete_secret(SecretId=self.secret_name(client), ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                return RegionOutcome(self._primary, False, f"secret: {_reason(error)}")
        except BotoCoreError as error:
            return RegionOutcome(self._primary, False, f"secret: {_reason(error)}")
        return RegionOutcome(self._primary, True, "secret and its replica deleted")

    def _views_in(self, region: str) -> list[ClientView]:
        prefix = self._names.client_api_key_prefix
        plans = self._plans(region)
        by_client: dict[str, list[dict[str, Any]]] = {}
        for key in self._all_keys(region, prefix):
            name = str(key.get("name", ""))
            if name.startswith(prefix):
                by_client.setdefault(name.removeprefix(prefix), []).append(key)
        views = []
        for client, keys in sorted(by_client.items()):
            try:
                current = self._value_in(region, client)
            except (ClientError, BotoCoreError):
                current = None
            views.append(
                ClientView(
                    client=client,
                    keys=len(keys),
                    enabled=sum(1 for k in keys if k.get("enabled")),
                    holds_current_value=any(k.get("value") == current for k in keys),
                    throttle=_throttle_of(plans.get(self._names.client_usage_plan(client))),
                )
            )
        return views


def render_list(listing: dict[str, dict[str, ClientView | str]], regions: tuple[str, str]) -> str:
    """``payments-dr clients list`` as a table: one row per client, one column per region."""
    rows: list[tuple[str, ...]] = [("client", *regions)]
    for client, by_region in sorted(listing.items()):
        cells = []
        for region in regions:
            view = by_region.get(region)
            if view is None:
                cells.append("-")
            elif isinstance(view, str):
                cells.append(view)
            else:
                throttle = f"{view.throttle.rate_limit:g}/s" if view.throttle else "no plan"
                current = "current value" if view.holds_current_value else "NOT the current value"
                cells.append(f"{view.enabled}/{view.keys} keys enabled, {current}, {throttle}")
        rows.append((client, *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def _throttle_of(plan: dict[str, Any] | None) -> ClientThrottle | None:
    throttle = (plan or {}).get("throttle")
    return ClientThrottle(float(throttle["rateLimit"]), int(throttle["burstLimit"])) if throttle else None


def _check_name(client: str) -> None:
    if not re.fullmatch(CLIENT_NAME_PATTERN, client):
        raise InvalidClientCommand(
            f"client name {client!r}: 1 to 40 lowercase letters, digits and hyphens, starting with a letter or digit"
        )


def _not_the_stacks_own(client: str) -> None:
    if client == CANARY_CLIENT:
        raise InvalidClientCommand(
            f"the {CANARY_CLIENT} client's key belongs to the stacks (each region's key resolves its secret at "
            "deploy time): change it with a deploy, not with payments-dr"
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{_code(error)}: {error.response.get('Error', {}).get('Message', '')}".strip(": ")
    return f"{type(error).__name__}: {error}"
