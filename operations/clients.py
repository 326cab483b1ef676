"""API clients of the payment service: one key value per client, accepted by both regions.

A client's value lives in its secret (``payments/{suffix}/clients/{name}``) in the primary region,
replicated by Secrets Manager to the secondary; each region's API Gateway holds an API key with
that value, in the client's own usage plan (its throttle). ``payments-dr clients``:

- ``create NAME``: the secret (a fresh 40-character value), then in each region the plan, the key,
  its directory entry and its place in the plan;
- ``rotate NAME``: a new value in the secret (the old one kept as its ``previous``), and in each
  region a second key with it: the old value keeps working until ``revoke NAME --previous``, so
  a merchant can roll over;
- ``revoke NAME --previous``: the keys of every value but the current one, in each region that
  accepts the current one, then ``previous`` dropped from the secret;
- ``revoke NAME``: every key of the client in each region, its plans and its secret, gone;
- ``list``: every client each region knows, and each of its keys: current, previous or another
  value, in the client's plan or not.

Every command converges. Whatever call fails in whichever region, the command says what is left
and exits 1, and the same command run again finishes the job with the same value: ``create``
takes the value its secret already holds, ``rotate`` completes the secret's current value before
it makes another, and every step (plan, key, directory entry, the key's place in the plan) is
done only if it is missing. No command leaves a client that was accepted in a region with no
accepted key there: ``revoke --previous`` refuses in a region that does not accept the current
value. Values are never printed unless asked for (``--show-key``).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.names import API_STAGE, ResourceNames
from chalicelib.schema import (
    API_KEY_SECRET_FIELD,
    CLIENT_NAME_PATTERN,
    DEFAULT_CLIENT_THROTTLE,
    SYNTHETIC_CLIENTS,
    ClientsTableSchema,
    ClientThrottle,
)

ClientFactory = Callable[[str, str], Any]
API_KEY_LENGTH = 40
KEY_ALPHABET = string.ascii_letters + string.digits
# The field of a client's secret holding the value a rotation replaced, until it is revoked.
PREVIOUS_FIELD = "previous_api_key"


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

    def failed(self, region: str, detail: str) -> ClientReport:
        """This report, with ``region`` failed for ``detail`` (the command stops there)."""
        self.outcomes.append(RegionOutcome(region, False, detail))
        return self

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


class ClientSecret(NamedTuple):
    """What a client's secret says: its current value, and the previous one until it is revoked."""

    current: str
    previous: str | None = None

    def to_text(self, client: str) -> str:
        body = {"client": client, API_KEY_SECRET_FIELD: self.current}
        if self.previous is not None:
            body[PREVIOUS_FIELD] = self.previous
        return json.dumps(body)

    @classmethod
    def from_text(cls, text: str) -> ClientSecret:
        body = json.loads(text)
        previous = body.get(PREVIOUS_FIELD)
        return cls(str(body[API_KEY_SECRET_FIELD]), str(previous) if previous else None)

    def role(self, value: str | None) -> str:
        """``current``, ``previous`` or ``other``: what the secret says of a key's ``value``."""
        if value == self.current:
            return "current"
        return "previous" if value is not None and value == self.previous else "other"


class KeyView(NamedTuple):
    """One API key of a client in one region, as an operator needs to see it."""

    key_id: str
    role: str
    enabled: bool
    in_plan: bool

    @property
    def accepted(self) -> bool:
        """Whether API Gateway admits its value: enabled and in the client's usage plan."""
        return self.enabled and self.in_plan


class RegionState(NamedTuple):
    """A client's usage plan and keys in one region, and which of the keys the plan holds."""

    plan: dict[str, Any] | None
    keys: list[dict[str, Any]]
    plan_key_ids: frozenset[str]

    def accepted_values(self) -> set[str]:
        """The values API Gateway admits for the client here."""
        return {str(k["value"]) for k in self.keys if k.get("enabled") and k["id"] in self.plan_key_ids}

    def key_with(self, value: str) -> dict[str, Any] | None:
        return next((k for k in self.keys if k.get("value") == value), None)


@dataclass(frozen=True)
class ClientView:
    """One client as one region holds it."""

    client: str
    keys: tuple[KeyView, ...]
    throttle: ClientThrottle | None

    @property
    def enabled(self) -> int:
        return sum(1 for k in self.keys if k.enabled)

    @property
    def holds_current_value(self) -> bool:
        """Whether the region admits the secret's current value."""
        return any(k.role == "current" and k.accepted for k in self.keys)


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
        self,
        client: str,
        *,
        throttle: ClientThrottle = DEFAULT_CLIENT_THROTTLE,
        value: str | None = None,
        for_the_stacks: bool = False,
    ) -> ClientReport:
        """A new client: its secret (replicated), then its plan and a key with the value in each region.

        Run again after a failure, it completes the client with the value its secret holds.
        ``for_the_stacks``: the stacks' own client (the canary), which only a stand-in for the
        stacks may make (the local environment); ``payments-dr`` refuses its name.
        """
        _check_name(client)
        if not for_the_stacks:
            _not_the_stacks_own(client, "create")
        report = ClientReport(client, "create")
        try:
            self._client("secretsmanager", self._primary).create_secret(
                Name=self.secret_name(client),
                Description=f"API key value of the payment client {client}",
                KmsKeyId=self._names.data_key_alias,
                SecretString=ClientSecret(value or new_key_value()).to_text(client),
                AddReplicaRegions=[{"Region": self._secondary, "KmsKeyId": self._names.data_key_alias}],
            )
        except ClientError as error:
            if _code(error) != "ResourceExistsException":
                return report.failed(self._primary, f"secret: {_reason(error)}")
        except BotoCoreError as error:
            return report.failed(self._primary, f"secret: {_reason(error)}")
        # The value the secret holds, whether this run made it or an earlier one did.
        try:
            secret = self._secret(client)
        except (ClientError, BotoCoreError, ValueError, KeyError) as error:
            return report.failed(self._primary, f"secret: {_reason(error)}")
        report.value = secret.current
        for region in self.regions:
            report.outcomes.append(self._ensure_accepted(region, client, secret.current, throttle))
        return report

    def rotate(self, client: str) -> ClientReport:
        """A new value for ``client``: in its secret, and as a second key in each region.

        A rotation that did not reach every region is completed with the secret's current value
        (never a third one); a rotation while the previous value is still accepted is refused
        until ``revoke NAME --previous``, so no region ever holds more than two values.
        """
        _check_name(client)
        _not_the_stacks_own(client, "rotate")
        report = ClientReport(client, "rotate")
        try:
            secret = self._secret(client)
        except (ClientError, BotoCoreError, ValueError, KeyError) as error:
            return report.failed(self._primary, f"secret: {_reason(error)}")
        states: dict[str, RegionState] = {}
        for region in self.regions:
            try:
                states[region] = self._state(region, client)
            except (ClientError, BotoCoreError) as error:
                report.outcomes.append(RegionOutcome(region, False, f"could not read: {_reason(error)}"))
        if not report.ok and report.outcomes:
            report.outcomes.append(
                RegionOutcome("-", False, "nothing rotated: every region must answer first")
            )
            return report
        if any(secret.current not in state.accepted_values() for state in states.values()):
            report.action = "rotate (completing the current value)"
            report.value = secret.current
        elif secret.previous is not None:
            raise InvalidClientCommand(
                f"{client} still has a previous value: `payments-dr clients revoke {client} --previous` once the "
                "client has moved to the current one, then rotate"
            )
        else:
            report.value = new_key_value()
            try:
                self._client("secretsmanager", self._primary).put_secret_value(
                    SecretId=self.secret_name(client),
                    SecretString=ClientSecret(report.value, previous=secret.current).to_text(client),
                )
            except (ClientError, BotoCoreError) as error:
                return report.failed(self._primary, f"secret: {_reason(error)}")
        for region in self.regions:
            throttle = _throttle_of(states[region].plan) or DEFAULT_CLIENT_THROTTLE
            report.outcomes.append(
                self._ensure_accepted(region, client, report.value, throttle, known=states[region])
            )
        return report

    def revoke(self, client: str, *, previous_only: bool = False) -> ClientReport:
        """Refuse ``client`` in both regions; ``previous_only``: only its values other than the current.

        ``previous_only`` refuses in a region that does not accept the current value (a rotation
        not completed there), so no region is left without a key the client holds.
        """
        _check_name(client)
        _not_the_stacks_own(client, "revoke")
        if not previous_only:
            report = ClientReport(client, "revoke")
            for region in self.regions:
                report.outcomes.append(self._revoke_in(region, client, keep_value=None))
            if report.ok:
                report.outcomes.append(self._delete_secret(client))
            return report
        report = ClientReport(client, "revoke previous keys of")
        try:
            secret = self._secret(client)
        except (ClientError, BotoCoreError, ValueError, KeyError) as error:
            return report.failed(self._primary, f"secret: {_reason(error)}")
        for region in self.regions:
            report.outcomes.append(self._revoke_in(region, client, keep_value=secret.current))
        if report.ok and secret.previous is not None:
            try:
                self._client("secretsmanager", self._primary).put_secret_value(
                    SecretId=self.secret_name(client),
                    SecretString=ClientSecret(secret.current).to_text(client),
                )
            except (ClientError, BotoCoreError) as error:
                report.outcomes.append(RegionOutcome(self._primary, False, f"secret: {_reason(error)}"))
        return report

    def listing(self) -> dict[str, dict[str, ClientView | str]]:
        """Every client by name, and how each region holds it (or why the region could not say)."""
        found: dict[str, dict[str, ClientView | str]] = {}
        secrets: dict[str, ClientSecret | None] = {}
        for region in self.regions:
            try:
                views = self._views_in(region, secrets)
            except (ClientError, BotoCoreError) as error:
                for clients in found.values():
                    clients[region] = f"unreachable: {_reason(error)}"
                found.setdefault("*", {})[region] = f"unreachable: {_reason(error)}"
                continue
            for view in views:
                found.setdefault(view.client, {})[region] = view
        return found

    def _secret(self, client: str) -> ClientSecret:
        """``client``'s secret, read in the primary (where it is written)."""
        text = self._client("secretsmanager", self._primary).get_secret_value(
            SecretId=self.secret_name(client)
        )["SecretString"]
        return ClientSecret.from_text(text)

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

    def _plan_key_ids(self, region: str, plan: dict[str, Any] | None) -> frozenset[str]:
        if plan is None:
            return frozenset()
        pages = self._client("apigateway", region).get_paginator("get_usage_plan_keys")
        return frozenset(
            str(key["id"]) for page in pages.paginate(usagePlanId=plan["id"]) for key in page.get("items", [])
        )

    def _state(self, region: str, client: str, plans: dict[str, dict[str, Any]] | None = None) -> RegionState:
        plan = (plans if plans is not None else self._plans(region)).get(
            self._names.client_usage_plan(client)
        )
        return RegionState(plan, self._keys(region, client), self._plan_key_ids(region, plan))

    def _api_stages(self, region: str) -> list[dict[str, str]]:
        """The payment API's stage in ``region`` (none where no API Gateway serves it: ``make run``)."""
        apis = self._client("apigateway", region).get_rest_apis(limit=500).get("items", [])
        return [{"apiId": a["id"], "stage": API_STAGE} for a in apis if a.get("name") == self._names.rest_api]

    def _ensure_accepted(
        self,
        region: str,
        client: str,
        value: str,
        throttle: ClientThrottle,
        *,
        known: RegionState | None = None,
    ) -> RegionOutcome:
        """Each step that makes ``region`` accept ``value`` for ``client``, done only where missing.

        The plan (made with ``throttle``), a key holding ``value``, the key's directory entry, then
        the key's place in the plan: in the directory before the plan admits it, so its first
        admitted request finds its client. ``known``: the region's state, when the caller has just
        read it.
        """
        apigateway = self._client("apigateway", region)
        done: list[str] = []
        try:
            state = known or self._state(region, client)
            plan = state.plan
            if plan is None:
                plan = apigateway.create_usage_plan(
                    name=self._names.client_usage_plan(client),
                    description=f"What the payment client {client} may send",
                    apiStages=self._api_stages(region),
                    throttle={"rateLimit": throttle.rate_limit, "burstLimit": throttle.burst_limit},
                )
                done.append("plan made")
            key = state.key_with(value)
            if key is None:
                key = apigateway.create_api_key(
                    name=self._names.client_api_key(client),
                    description=f"Payment client {client}; value from the secret {self.secret_name(client)}",
                    enabled=True,
                    value=value,
                )
                done.append(f"key {key['id']} made")
            elif not key.get("enabled"):
                apigateway.update_api_key(
                    apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}]
                )
                done.append(f"key {key['id']} enabled")
            self._register(region, client, [key])
            if key["id"] not in state.plan_key_ids:
                apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
                done.append("key added to the plan")
        except (ClientError, BotoCoreError) as error:
            left = f" after: {', '.join(done)}" if done else ""
            return RegionOutcome(region, False, f"{_reason(error)}{left}; run it again to complete")
        held = _throttle_of(plan) or throttle
        return RegionOutcome(
            region,
            True,
            f"key {key['id']} accepted in plan {plan['id']} ({held.rate_limit:g}/s, burst {held.burst_limit})"
            + (f": {', '.join(done)}" if done else ": nothing was missing"),
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
        """Delete ``client``'s keys in ``region`` but the one holding ``keep_value`` (None: all, and the plan)."""
        apigateway = self._client("apigateway", region)
        deleted = 0
        try:
            state = self._state(region, client)
            refusal = self._refusal(state, keep_value, client)
            if refusal is not None:
                return RegionOutcome(region, False, refusal)
            doomed = [k for k in state.keys if keep_value is None or k.get("value") != keep_value]
            directory = self._client("dynamodb", region)
            for key in doomed:
                apigateway.delete_api_key(apiKey=key["id"])
                # Once API Gateway refuses the key; an id is never given to another key.
                directory.delete_item(
                    TableName=self._names.clients_table,
                    Key={ClientsTableSchema.PARTITION_KEY: {"S": key["id"]}},
                )
                deleted += 1
            plan = None if keep_value is not None else state.plan
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
            return RegionOutcome(
                region, False, f"{_reason(error)} after {deleted} key(s) deleted; run it again"
            )
        return RegionOutcome(
            region,
            True,
            f"{deleted} key(s) deleted" + (", usage plan deleted" if plan is not None else ""),
        )

    def _refusal(self, state: RegionState, keep_value: str | None, client: str) -> str | None:
        """Why keys of ``client`` other than ``keep_value`` may not go in this region, if they may not.

        Where the current value is not accepted (a rotation that did not reach the region), its
        other keys are all the client has there.
        """
        if keep_value is None or keep_value in state.accepted_values():
            return None
        return (
            "does not accept the current value yet (a rotation did not finish here): nothing revoked; run "
            f"`payments-dr clients rotate {client}` to complete it, then this again"
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

    def _views_in(self, region: str, secrets: dict[str, ClientSecret | None]) -> list[ClientView]:
        """``region``'s clients; ``secrets``: each client's secret, read once for both regions."""
        prefix = self._names.client_api_key_prefix
        plans = self._plans(region)
        by_client: dict[str, list[dict[str, Any]]] = {}
        for key in self._all_keys(region, prefix):
            name = str(key.get("name", ""))
            if name.startswith(prefix):
                by_client.setdefault(name.removeprefix(prefix), []).append(key)
        views = []
        for client, keys in sorted(by_client.items()):
            if client not in secrets:
                try:
                    secrets[client] = self._secret(client)
                except (ClientError, BotoCoreError, ValueError, KeyError):
                    secrets[client] = None
            secret = secrets[client]
            plan = plans.get(self._names.client_usage_plan(client))
            in_plan = self._plan_key_ids(region, plan)
            views.append(
                ClientView(
                    client=client,
                    keys=tuple(
                        KeyView(
                            key_id=str(k["id"]),
                            role=secret.role(k.get("value")) if secret else "no secret",
                            enabled=bool(k.get("enabled")),
                            in_plan=k["id"] in in_plan,
                        )
                        for k in keys
                    ),
                    throttle=_throttle_of(plan),
                )
            )
        return views


def render_list(listing: dict[str, dict[str, ClientView | str]], regions: tuple[str, str]) -> str:
    """``payments-dr clients list`` as a table: one row per client, one column per region.

    Each key shows what the secret says of its value (current, previous, other) and whether the
    region admits it; a half-made client shows as a current key that is ``NOT ACCEPTED``.
    """
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
                keys = ", ".join(
                    f"{k.role}{'' if k.accepted else ' NOT ACCEPTED'}"
                    + ("" if k.in_plan else " (not in the plan)")
                    + ("" if k.enabled else " (disabled)")
                    for k in view.keys
                )
                cells.append(f"{keys}; {throttle}")
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


def _not_the_stacks_own(client: str, action: str) -> None:
    """Refuse the stacks' own clients (the canary): their keys and scope are the deployment's."""
    if client in SYNTHETIC_CLIENTS:
        raise InvalidClientCommand(
            f"cannot {action} {client}: that client belongs to the stacks (each region's key resolves its secret at "
            "deploy time, and its payments are synthetic, never announced): change it with a deploy, not with "
            "payments-dr"
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{_code(error)}: {error.response.get('Error', {}).get('Message', '')}".strip(": ")
    return f"{type(error).__name__}: {error}"
