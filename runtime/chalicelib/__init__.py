"""Payment domain and AWS adapters, shipped with the Chalice app. Which function uses what:

Every function (``runtime/app.py`` routes and event handlers each call one function of the use-case
module of their function: payments_api, processor, notifier, orchestrator, observer):
    names         what each resource is called (also read by the stacks and the tooling)
    schema        the formats: table keys and sort keys, scoped ids, message attributes, headers
    metrics       the custom metrics' names
    failover_numbers
                  every number that decides failover and failback (also read by the stacks,
                  the local environment, the drill and payments-dr)
    settings      the environment a function runs with
    services      the adapters a handler uses, built once per container
    sdk           the botocore session; clients made on first use
    adapters/     the AWS adapters, a file per family: payments_table, region_flag, messages,
                  clients, peer_api
    observability, failures, errors, heap
                  logs and metrics, what an AWS failure was, named domain errors, the
                  collector during a cold start

API function (``POST /validate``, ``POST /process``, the reads, ``GET /health``):
    payments_api  its use cases: who the client is, a payment queued or processed now, the
                  reads, /health
    http          request parsing and the one mapping from errors to HTTP answers
    idempotency   the ``Idempotency-Key`` header: a key bound after its work, no lock
    payments, currencies, cards
                  the payment model and its validation; card numbers refused, never logged
    payment_steps validated, then processed, each counted (shared with the processor)
    processing    a payment recorded exactly once (``/process``); rejections
    ports         what the use cases need from outside: repository, queue, notifications,
                  the client directory
    items         the table's items in DynamoDB's wire format
    cursor        page cursors of a customer's history
    regions       the in-service flag and the health report
    webhooks      merchants' webhook endpoints: what may be registered, where a delivery may
                  go, how it is signed and retried
    webhook_endpoints
                  the API function's use cases for a client's endpoints
    webhook_delivery
                  which endpoints get an event, and one signed attempt
    webhook_replay
                  a replay of a client's events over a time range: its request and its job
    local_api_keys, local_stage
                  only where no API Gateway stands: ``make run`` and ``chalice local``

Processor function (the payment queue): processor.process_message_batch -> payment_steps,
processing, items.
Notifier function (the table's stream): notifier.announce_processed_payments -> outbox, items.
Failover orchestrator (the ops-alert topic): orchestrator.handle_ops_alert -> failover (which
alarms are triggers, and the decision), regions.
Canary, the observer (a schedule): observer.run_canary -> canary, and the repository's removal
of the canary's own old payments.

Value records here are ``typing.NamedTuple`` classes, not frozen dataclasses: as immutable, and
defined in about a tenth of the time (CPython compiles six methods for each frozen dataclass),
which every function pays on every cold start.
"""
