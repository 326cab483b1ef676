"""The fault-schedule checker: random faults at the edge of a failure, merchants' properties checked.

Several merchants pay through :mod:`payments_client` against both regions of the payment app,
each region its own API function (the Chalice app as Lambda calls it) on one local AWS, with the
tables replicated between the regions, as ``make run`` has them. A *schedule*
(:mod:`chaos.schedule`) says which faults strike, and where in a request: the function killed
between the claim and the record or after the write, a dependency timing out, a 503 after the
write, the answer lost on the wire, the merchant's own throttle, a region lost for good, a drain,
the notifier failing. Over the whole history :mod:`chaos.properties` checks what a merchant is
promised:

- every payment it was told succeeded is stored exactly once, in both regions;
- it saw no error (no schedule takes both regions out);
- its client moved only away from a region that was lost or draining;
- every stored payment is announced at least once (after ``reannounce``), under one event id.

``python -m chaos`` (``make chaos``) runs many schedules and prints the report; ``make test`` runs
a short version and, for each problem the fixes removed, a planted twin the checker must catch
(:mod:`chaos.twins`). Every schedule is written down, so a failing one can be replayed.
"""
