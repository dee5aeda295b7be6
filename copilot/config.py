"""Configuration: one pydantic-settings object.

Values come, highest priority first, from keyword arguments, ``COPILOT_*`` environment
variables, then ``config.toml`` in the XDG config directory (``copilot config path`` prints it),
then the defaults below. Every field is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from copilot import paths


def config_file() -> Path:
    """Path of the optional TOML configuration file."""
    return paths.config_dir() / "config.toml"


class Settings(BaseSettings):
    """All user-facing settings of the copilot."""

    model_config = SettingsConfigDict(env_prefix="COPILOT_", extra="ignore")

    cache_dir: Path = Field(
        default_factory=paths.cache_dir,
        description="Index cache, model weights and artifacts (heatmaps, masks).",
    )
    data_dir: Path = Field(
        default_factory=paths.data_dir,
        description="Conversation threads and knowledge-base indexes.",
    )
    offline: bool = Field(
        default=False,
        description="Never try the network: missing weights are reported at once.",
    )
    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        default="auto", description="Compute device; auto picks cuda, then mps, then cpu."
    )
    half_precision: bool = Field(default=True, description="Use float16 on a GPU where the model allows it.")
    gpu_memory_budget_mb: int | None = Field(
        default=None,
        description="Models kept loaded on the GPU at once, in MB; default 80% of the device.",
    )
    index_workers: int = Field(
        default=0, ge=0, description="Processes for header indexing; 0 means one per core."
    )
    max_decoded_mb: int = Field(
        default=1024,
        gt=0,
        description="Refuse to decode an image whose declared pixels exceed this many MB.",
    )
    max_volume_mb: int = Field(
        default=1024,
        gt=0,
        description="Refuse to load a CT/MR series as a volume when its voxels (rows x columns x "
        "slices, as float32) would exceed this many MB (a tool's working copies take several "
        "times that); checked from the headers, before any slice is decoded.",
    )
    download_timeout_s: float = Field(
        default=10.0, gt=0, description="Connect/read timeout for weight downloads."
    )
    url_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description="URL prefix rewrites for weight downloads from plain URLs, e.g. "
        '{"https://github.com/": "https://mirror.example.org/github/"} (an internal mirror); '
        "Hugging Face repositories follow HF_ENDPOINT.",
    )
    auto_pull_max_mb: int = Field(
        default=1024,
        ge=0,
        description="A tool's first use downloads models up to this size; larger ones need "
        "an explicit `copilot models pull`.",
    )
    tool_timeout_s: float = Field(default=300.0, gt=0, description="Per-tool time limit.")
    mcp_tools: Path | None = Field(
        default=None,
        description="The mapping file of MCP servers' tools used as copilot tools (docs/mcp.md); "
        "default: mcp-tools.toml in the config dir, when it exists.",
    )
    self_check: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Answer-time self-check: the tools that read the image are run again on a blank "
        "film of the same size, and a result that does not change is said to be uncertain. 'auto': "
        "when an LLM composes the answer; 'on': always; 'off': never.",
    )
    llm: str | None = Field(
        default=None,
        description="LangChain model string (e.g. openai:gpt-4o-mini, ollama:medgemma); "
        "unset means the embedded offline planner and template composer.",
    )
    llm_trusted: bool = Field(
        default=False,
        description="Allow patient identifiers to reach the LLM (a trusted, local endpoint).",
    )
    llm_send_images: bool = Field(default=False, description="Allow images to be sent to the LLM.")
    llm_send_burned_in: bool = Field(
        default=False,
        description="Also send images that have, or may have, burned-in annotations "
        "(BurnedInAnnotation=YES, or unknown on a secondary capture or plain image file).",
    )
    llm_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Per-read LLM time limit (connect, and each wait for the next bytes of a "
        "reply; a cold prompt on a CPU server sends nothing until it is read). Each call also "
        "has a total deadline (llm_plan_deadline_s, llm_review_deadline_s, llm_compose_deadline_s).",
    )
    llm_max_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Retries of an LLM request that timed out or could not connect (within the "
        "call's total deadline).",
    )
    llm_plan_deadline_s: float = Field(
        default=90.0,
        gt=0,
        description="Total time for one LLM planner call, however the reply trickles in; past it "
        "the embedded planner's plan is used and the answer says why.",
    )
    llm_review_deadline_s: float = Field(
        default=60.0,
        gt=0,
        description="Total time for one LLM review call (more tools after a round?); past it the "
        "embedded review decides.",
    )
    llm_compose_deadline_s: float = Field(
        default=120.0,
        gt=0,
        description="Total time for one LLM composer call, streamed tokens included; past it the "
        "template answer is shown and says why.",
    )
    llm_plan_max_tokens: int = Field(
        default=256, ge=16, le=32768, description="Most tokens an LLM planner or review reply may hold."
    )
    llm_compose_max_tokens: int = Field(
        default=512, ge=16, le=32768, description="Most tokens an LLM composer answer may hold."
    )
    llm_tool_choice: Literal["auto", "required", "omit"] = Field(
        default="auto",
        description="The tool_choice sent with planner requests: 'auto' (some servers, such as "
        "llama-cpp-python's, use tools only when it is sent), 'required' (the first plan must "
        "call a tool), or 'omit' (for servers that refuse the field).",
    )
    dicomweb_token: SecretStr | None = Field(
        default=None,
        description="Bearer token sent to DICOMweb servers (QIDO/WADO/STOW); never printed.",
    )
    dicomweb_username: str | None = Field(
        default=None, description="Basic-auth user name for DICOMweb servers (with dicomweb_password)."
    )
    dicomweb_password: SecretStr | None = Field(
        default=None, description="Basic-auth password for DICOMweb servers; never printed."
    )
    dicomweb_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Connect/read time limit of each socket operation of a DICOMweb request "
        "(within dicomweb_deadline_s).",
    )
    dicomweb_deadline_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Total time limit of one DICOMweb search, series-header read or store, "
        "retries included (an instance fetch gets this plus the time to move its expected "
        "size at 4 MiB/s); a server that accepts and never answers fails within it.",
    )
    dicomweb_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of a DICOMweb request that could not connect, timed out or got "
        "HTTP 408/429/502/503/504, with exponential back-off.",
    )
    dicomweb_backoff_s: float = Field(
        default=0.5, ge=0, description="First back-off wait between DICOMweb retries (doubles each time)."
    )
    server: str | None = Field(
        default=None,
        description="Base URL of a 'copilot serve' server (http://host:8000) whose warm tools the "
        "CLI, app and API use; unset: everything runs in-process.",
    )
    serve_api_key: SecretStr | None = Field(
        default=None,
        description="API key a 'copilot serve' server requires (Authorization: Bearer) and clients "
        "send; required to listen on a non-loopback address; never printed.",
    )
    serve_host: str = Field(default="127.0.0.1", description="Address 'copilot serve' listens on.")
    serve_port: int = Field(default=8000, ge=1, le=65535, description="Port 'copilot serve' listens on.")
    serve_replicas: int = Field(default=1, ge=1, le=64, description="Replicas of each tool deployment.")
    serve_replica_gpus: float = Field(
        default=0.25,
        ge=0,
        le=8,
        description="GPU share of each tool replica where Ray sees a GPU (0.25: four replicas a GPU).",
    )
    serve_replica_cpus: float = Field(
        default=0.25, gt=0, le=64, description="CPU share Ray reserves for each tool replica."
    )
    serve_batching: bool = Field(
        default=True, description="Batch concurrent image requests to a tool (Ray Serve @serve.batch)."
    )
    serve_max_batch_size: int = Field(default=16, ge=1, le=1024, description="Largest dynamic batch.")
    serve_batch_wait_s: float = Field(
        default=0.01, ge=0, le=5, description="Longest wait for a dynamic batch to fill."
    )
    serve_dicomweb_urls: list[str] = Field(
        default_factory=list,
        description="DICOMweb base URLs a 'copilot serve' server fetches referenced images from "
        "(with its own credentials); a reference to any other is refused and the client uploads.",
    )
    serve_max_request_mb: int = Field(
        default=128,
        gt=0,
        le=4096,
        description="Largest request body a 'copilot serve' server accepts; a larger one is refused "
        "with HTTP 413 before (or, streamed, while) it is read.",
    )
    serve_timeout_s: float = Field(
        default=600.0, gt=0, description="Client-side limit of one request to a 'copilot serve' server."
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster address (auto, ray://head:10001); set, 'copilot analyze' runs on Ray "
        "Data there; unset, '--ray' starts a local Ray instance.",
    )
    ray_actor_cpus: float = Field(
        default=0.5, gt=0, le=64, description="CPU share of each Ray Data tool actor."
    )
    ray_actor_gpus: float = Field(
        default=1.0, ge=0, le=8, description="GPUs of each Ray Data tool actor where Ray sees a GPU."
    )
    ray_actors: int = Field(default=1, ge=1, le=256, description="Ray Data actors per tool (pool size).")
    embedding_model: str = Field(
        default="all-minilm-l6-v2",
        description="Model registry id of the sentence encoder used by the retriever and planner.",
    )
    kb_iu_limit: int | None = Field(
        default=None,
        ge=1,
        description="Embed only the first N IU reports (quick trials and tests); unset: all.",
    )
    kb_corpus: Path | None = Field(
        default=None,
        description="Path to NLMCXR_reports.tgz; default: the copy inside torchxrayvision.",
    )
    kb_max_file_mb: float = Field(
        default=20.0, gt=0, description="`kb add` skips a file larger than this (with its reason)."
    )
    kb_max_total_mb: float = Field(
        default=200.0, gt=0, description="`kb add` refuses a corpus whose files add up to more than this."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the TOML file."""
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file()),
        )

    @property
    def index_cache_path(self) -> Path:
        """SQLite file holding the header index cache."""
        return self.cache_dir / "index.sqlite"

    @property
    def weights_dir(self) -> Path:
        """Where downloaded or registered model weights live."""
        return self.cache_dir / "models"

    @property
    def artifacts_dir(self) -> Path:
        """Where tools write heatmaps, masks and other artifacts."""
        return self.cache_dir / "artifacts"

    @property
    def results_dir(self) -> Path:
        """Where tool results are cached, one folder per image (see ``copilot.agents.context``)."""
        return self.cache_dir / "tool-results"

    def workers(self) -> int:
        """Number of indexing processes to use."""
        return self.index_workers or max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
