"""``make e2e``: deploy ``cdk.out`` into MiniStack (both regions) and drive the deployed system.

Prints one line per step with its result and time, then what the emulator could not verify.
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

from e2e.deploy import bootstrap, create_stack, publish_assets, stacks_in_deploy_order, update_stack
from e2e.emulator import ACCOUNT, CREDENTIALS, Emulator
from e2e.emulator_gaps import EmulatorGaps
from e2e.journey import Deployed, Journey, Steps

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    parser.add_argument("--emulator-python", type=Path, default=ROOT / ".venv-e2e" / "bin" / "python")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".e2e")
    parser.add_argument("--node-path", type=Path, default=ROOT / "e2e" / "node_modules")
    args = parser.parse_args(argv)

    steps, gaps = Steps(), EmulatorGaps()
    stacks = stacks_in_deploy_order(args.assembly)
    with Emulator(args.emulator_python, args.work_dir / "emulator.log", node_path=args.node_path) as emulator:
        print(
            f"emulator: MiniStack on {emulator.endpoint} (log {args.work_dir / 'emulator.log'})", flush=True
        )
        config = Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=60)

        def client(service: str, region: str) -> Any:
            return boto3.client(
                service, region_name=region, endpoint_url=emulator.endpoint, config=config, **CREDENTIALS
            )

        for region in sorted({s.region for s in stacks}):
            steps.run(
                f"bootstrap {region} (asset bucket, bootstrap version {ACCOUNT})",
                functools.partial(bootstrap, client, ACCOUNT, region),
            )
        outputs: dict[str, dict[str, str]] = {}
        for stack in stacks:
            uploaded: dict[str, Any] = {}

            def rewrite(
                artifact: Any, template: dict[str, Any], uploaded: dict[str, Any] = uploaded
            ) -> dict[str, Any]:
                uploaded.update(gaps.template_for_emulator(artifact, template))
                return uploaded

            def deploy(stack: Any = stack, uploaded: dict[str, Any] = uploaded) -> str:
                publish_assets(client, stack, ACCOUNT, rewrite)
                outputs[stack.name] = create_stack(client, stack, ACCOUNT)
                gaps.after_stack(stack, client, uploaded)
                return f"CREATE_COMPLETE in {stack.region}"

            steps.run(f"deploy {stack.name}", deploy)

        def redeploy_primary() -> str:
            """``cdk deploy`` again with a changed template: the flag's text changed, as it has before."""
            [primary] = [s for s in stacks if s.name.endswith("Primary") and "Key" not in s.name]

            def changed(artifact: Any, template: dict[str, Any]) -> dict[str, Any]:
                rewritten = gaps.template_for_emulator(artifact, template)
                for body in rewritten.get("Resources", {}).values():
                    if body["Type"] == "Custom::AWS" and "putParameter" in json.dumps(body["Properties"]):
                        body["Properties"]["Create"] = json.loads(
                            json.dumps(body["Properties"]["Create"]).replace(
                                "takes payments", "takes payments (a later version of the flag)"
                            )
                        )
                return rewritten

            publish_assets(client, primary, ACCOUNT, changed)
            update_stack(client, primary, ACCOUNT)
            return f"UPDATE_COMPLETE in {primary.region}"

        deployed = Deployed.from_outputs(outputs, client, args.work_dir, endpoint=emulator.endpoint)
        Journey(deployed, steps, gaps, redeploy_primary=redeploy_primary).run()
    print(f"e2e: PASS in {time.monotonic() - steps.started:.1f} s")
    for note in gaps.notes:
        print(f"  emulator gap: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
