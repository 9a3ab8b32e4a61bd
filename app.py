#!/usr/bin/env python3
"""The CDK app: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json and docs/deploy.md)."""

from infra.assembly import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
