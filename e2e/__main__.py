"""``make e2e``: deploy ``cdk.out`` into MiniStack (both regions) and drive the deployed system.

Both topologies, one after the other in one emulator: the default (active-passive) stacks of
``cdk.out``, then the active-active ones, synthesized here beside them under their own environment
suffix. Prints one line per step with its result and time, then what the emulator could not verify.
Exits non-zero on the first failed step.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.names import DEFAULT_WITNESS_REGION, Topology
from e2e.active_active import ActiveActiveJourney
from e2e.deploy import bootstrap, create_stack, publish_assets, stacks_in_deploy_order, update_stack
from e2e.emulator import ACCOUNT, CREDENTIALS, Emulator
from e2e.emulator_gaps import EmulatorGaps
from e2e.journey import Deployed, Journey, Steps

ROOT = Path(__file__).resolve().parents[1]


# The active-active stacks go beside the default ones in the same emulator, under their own names.
ACTIVE_ACTIVE_SUFFIX = "aa"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    parser.add_argument("--emulator-python", type=Path, default=ROOT / ".venv-e2e" / "bin" / "python")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".e2e")
    parser.add_argument("--node-path", type=Path, default=ROOT / "e2e" / "node_modules")
    parser.add_argument(
        "--topology",
        choices=["both", *(str(t) for t in Topology)],
        default="both",
        help="which stacks to deploy and drive: the default ones (cdk.out), the active-active ones "
        "(synthesized here with a strong-consistency witness), or both, one after the other (default)",
    )
    args = parser.parse_args(argv)

    steps, gaps = Steps(), EmulatorGaps()
    with Emulator(args.emulator_python, args.work_dir / "emulator.log", node_path=args.node_path) as emulator:
        print(
            f"emulator: MiniStack on {emulator.endpoint} (log {args.work_dir / 'emulator.log'})", flush=True
        )
        config = Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=60)

        def client(service: str, region: str) -> Any:
            return boto3.client(
                service, region_name=region, endpoint_url=emulator.endpoint, config=config, **CREDENTIALS
            )

        deployer = Deployer(client, steps, gaps)
        if args.topology in ("both", Topology.ACTIVE_PASSIVE):
            stacks = stacks_in_deploy_order(args.assembly)
            outputs = deployer.deploy(stacks)
            deployed = Deployed.from_outputs(outputs, client, args.work_dir, endpoint=emulator.endpoint)
            Journey(
                deployed, steps, gaps, redeploy_primary=functools.partial(redeploy_primary, deployer, stacks)
            ).run()
        if args.topology in ("both", Topology.ACTIVE_ACTIVE):
            assembly = steps.run(
                f"synthesize -c topology={Topology.ACTIVE_ACTIVE} -c strong_consistency_witness="
                f"{DEFAULT_WITNESS_REGION} -c environment_suffix={ACTIVE_ACTIVE_SUFFIX}",
                lambda: active_active_assembly(args.work_dir / "active-active"),
            )
            outputs = deployer.deploy(stacks_in_deploy_order(assembly))
            deployed = Deployed.from_outputs(
                outputs, client, args.work_dir / "active-active", endpoint=emulator.endpoint
            )
            ActiveActiveJourney(deployed, steps, gaps).run()
    print(f"e2e: PASS in {time.monotonic() - steps.started:.1f} s")
    for note in gaps.notes:
        print(f"  emulator gap: {note}")
    return 0


class Deployer:
    """Bootstraps each region once and deploys stacks as ``cdk deploy --all`` would, in order."""

    def __init__(self, client: Any, steps: Steps, gaps: EmulatorGaps) -> None:
        self.client, self.steps, self.gaps = client, steps, gaps
        self.bootstrapped: set[str] = set()
        self.deployed: set[str] = set()

    def deploy(self, stacks: list[Any]) -> dict[str, dict[str, str]]:
        """Each stack's outputs; a stack already deployed (the account's API Gateway settings) is kept."""
        for region in sorted({s.region for s in stacks} - self.bootstrapped):
            self.steps.run(
                f"bootstrap {region} (asset bucket, bootstrap version {ACCOUNT})",
                functools.partial(bootstrap, self.client, ACCOUNT, region),
            )
            self.bootstrapped.add(region)
        outputs: dict[str, dict[str, str]] = {}
        for stack in stacks:
            if stack.name in self.deployed:
                continue
            uploaded: dict[str, Any] = {}

            def rewrite(
                artifact: Any, template: dict[str, Any], uploaded: dict[str, Any] = uploaded
            ) -> dict[str, Any]:
                uploaded.update(self.gaps.template_for_emulator(artifact, template))
                return uploaded

            def deploy(stack: Any = stack, uploaded: dict[str, Any] = uploaded) -> str:
                publish_assets(self.client, stack, ACCOUNT, rewrite)
                outputs[stack.name] = create_stack(self.client, stack, ACCOUNT)
                self.gaps.after_stack(stack, self.client, uploaded)
                return f"CREATE_COMPLETE in {stack.region}"

            self.steps.run(f"deploy {stack.name}", deploy)
            self.deployed.add(stack.name)
        return outputs


def redeploy_primary(deployer: Deployer, stacks: list[Any]) -> str:
    """``cdk deploy`` again with a changed template: the flag's text changed, as it has before."""
    [primary] = [s for s in stacks if s.name.endswith("Primary") and "Key" not in s.name]

    def changed(artifact: Any, template: dict[str, Any]) -> dict[str, Any]:
        rewritten = deployer.gaps.template_for_emulator(artifact, template)
        for body in rewritten.get("Resources", {}).values():
            if body["Type"] == "Custom::AWS" and "putParameter" in json.dumps(body["Properties"]):
                body["Properties"]["Create"] = json.loads(
                    json.dumps(body["Properties"]["Create"]).replace(
                        "takes payments", "takes payments (a later version of the flag)"
                    )
                )
        return rewritten

    publish_assets(deployer.client, primary, ACCOUNT, changed)
    update_stack(deployer.client, primary, ACCOUNT)
    return f"UPDATE_COMPLETE in {primary.region}"


def active_active_assembly(outdir: Path) -> Path:
    """The app synthesized in active-active (as `cdk synth -c topology=active-active ...`); its directory."""
    from stacks.synthesis import synthesize_assembly

    outdir.mkdir(parents=True, exist_ok=True)
    assembly = synthesize_assembly(
        outdir,
        topology=Topology.ACTIVE_ACTIVE.value,
        strong_consistency_witness=DEFAULT_WITNESS_REGION,
        environment_suffix=ACTIVE_ACTIVE_SUFFIX,
    )
    return Path(assembly.directory)


if __name__ == "__main__":
    sys.exit(main())
