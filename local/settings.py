"""How ``make up`` / ``make demo`` run the local stack; read from the environment like every setting."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalStackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    port: int = Field(default=8000, ge=0, le=65535, description="The REST API's port (0: any free one)")
    ws_port: int = Field(default=0, ge=0, le=65535, description="The WebSocket API's port (0: any free one)")
    # Comma-separated; each key is its own tenant. Empty: one key is made up and printed.
    api_keys: str = ""
    # The usage-plan tiers the tenants command can put tenants in (the deployed stack's default tiers).
    tiers: str = "free,pro"
    runners: int = Field(default=1, ge=0, le=16)
    # A real ComfyUI to drive instead of the simulator.
    comfyui_url: str = ""
    # That ComfyUI's input, output and temp folders (as its folder_paths has them: with --temp-directory T
    # the temp folder is T/temp), so runners can remove each job's files. Unset: files stay on its disk.
    comfyui_input_dir: str = ""
    comfyui_output_dir: str = ""
    comfyui_temp_dir: str = ""
    state_dir: str = ".local"
    visibility_timeout_seconds: int = Field(default=30, ge=1)
    max_receive_count: int = Field(default=5, ge=1)
    sim_step_delay: float = Field(default=0.05, ge=0)
    # Seconds added to every node the simulator runs, standing in for slow nodes.
    sim_node_delay: float = Field(default=0.0, ge=0)
    # Runner pools beside the default one: the CDK app's `pools` context as JSON, e.g.
    # '[{"name": "spot", "spot": true, "minInstances": 2, "models": ["checkpoints/sdxl.safetensors"]}]'.
    pools: str = ""
    # The pools of the template whose IAM is enforced, when wider than POOLS (same JSON, holding every pool
    # of POOLS): stacks of different pools then share one synthesis. Empty: the stack's own pools.
    iam_template_pools: str = ""
    # Each tier's jobs in flight and priority lane, e.g. '{"free": {"maxJobsInFlight": 4}}'.
    tier_policies: str = ""
    # Webhooks to http://127.0.0.1 (test receivers) are accepted; never so in AWS. The retry schedule
    # is the webhook functions' own settings (WEBHOOK_RETRY_BASE_SECONDS...), read from the environment.
    webhook_allow_local_http: bool = False
    # Signs WebSocket tokens; empty: a new random secret per start.
    ws_token_secret: str = ""

    def key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    def tier_list(self) -> list[str]:
        return [tier.strip() for tier in self.tiers.split(",") if tier.strip()]
