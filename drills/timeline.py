"""The drill's timeline picture: requests per second per region, with the fault and the moves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from drills.report import Attempt, DrillReport
from drills.riders import RidersReport


def draw_timeline(report: DrillReport, regions_: tuple[str, str], path: Path) -> Path:
    """Accepted and failed requests per second per region, with the fault, failover and failback."""
    markers = (
        (report.fault_at, "fault", "black"),
        (report.detect_at, "detect", "tab:gray"),
        (report.decide_at, "decide", "tab:purple"),
        (report.failover_at, "execute", "tab:green"),
        (report.failback_at, "failback", "tab:blue"),
    )
    title = (
        f"DR drill ({report.fault}): RTO {report.rto_seconds or 0:.1f} s, lost {len(report.lost)}, "
        f"duplicates {len(report.duplicates)}"
    )
    return _draw(report.attempts, regions_, markers, title, path)


def draw_riders_timeline(report: RidersReport, regions_: tuple[str, str], path: Path) -> Path:
    """The riders' drill: payments per second per region, with the fault and the failback."""
    gaps = ", ".join(f"{kind} {figures.longest_gap:.1f} s" for kind, figures in report.kinds.items())
    title = (
        f"{report.topology} drill ({report.fault}): longest gap {gaps}; "
        f"lost {len(report.lost)}, duplicates {len(report.duplicates)}"
    )
    markers = ((report.fault_at, "fault", "black"), (report.failback_at, "failback", "tab:blue"))
    return _draw(report.attempts, regions_, markers, title, path, unit="payments")


def _draw(
    attempts: Sequence[Attempt],
    regions_: tuple[str, str],
    markers: Sequence[tuple[float | None, str, str]],
    title: str,
    path: Path,
    unit: str = "requests",
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(a.at for a in attempts)
    seconds = int(max(a.at for a in attempts) - start) + 1
    figure, axis = plt.subplots(figsize=(10, 4))
    styles = {
        (regions_[0], True): ("tab:blue", "-"),
        (regions_[1], True): ("tab:green", "-"),
        (regions_[0], False): ("tab:red", ":"),
        (regions_[1], False): ("tab:orange", ":"),
    }
    for (region, ok), (colour, line) in styles.items():
        per_second = [0] * seconds
        for attempt in attempts:
            if attempt.region == region and attempt.acknowledged == ok:
                per_second[int(attempt.at - start)] += 1
        axis.plot(
            range(seconds),
            per_second,
            color=colour,
            linestyle=line,
            label=f"{region} {'accepted' if ok else 'failed'}",
        )
    for step, (at, label, colour) in enumerate(markers):
        if at is not None:
            axis.axvline(at - start, color=colour, linestyle="--")
            # The first four fall within seconds of each other: their labels go one under another.
            axis.text(at - start + 0.2, axis.get_ylim()[1] * (0.93 - 0.09 * (step % 4)), label, color=colour)
    axis.set_xlabel("seconds since the drill started")
    axis.set_ylabel(f"{unit} per second")
    axis.set_title(title, fontsize="medium")
    axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
