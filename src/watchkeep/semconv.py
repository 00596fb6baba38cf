"""Every span attribute name watchkeep reads or writes, in one place.

The OpenTelemetry GenAI conventions (current and older names), OpenInference and
OpenLLMetry spell the same facts differently; ingest maps all of them onto the same
columns, and the SDK writes the current GenAI names plus watchkeep's own trace-level
attributes, and the score vocabulary both sides validate against. Nothing here imports
anything beyond the standard library: the SDK and the server both depend on it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- OpenTelemetry GenAI (current) -------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: Final = "gen_ai.server.time_to_first_token"

# --- OpenTelemetry GenAI (older names, still emitted by many instrumentations) ---------
GEN_AI_SYSTEM: Final = "gen_ai.system"
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_PROMPT: Final = "gen_ai.prompt"
GEN_AI_COMPLETION: Final = "gen_ai.completion"
# OpenLLMetry's indexed form: gen_ai.prompt.0.role, gen_ai.prompt.0.content, ...
GEN_AI_PROMPT_PREFIX: Final = "gen_ai.prompt."
GEN_AI_COMPLETION_PREFIX: Final = "gen_ai.completion."
LLM_REQUEST_TYPE: Final = "llm.request.type"
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
# Older event-based content capture.
EVENT_GEN_AI_SYSTEM_MESSAGE: Final = "gen_ai.system.message"
EVENT_GEN_AI_USER_MESSAGE: Final = "gen_ai.user.message"
EVENT_GEN_AI_ASSISTANT_MESSAGE: Final = "gen_ai.assistant.message"
EVENT_GEN_AI_TOOL_MESSAGE: Final = "gen_ai.tool.message"
EVENT_GEN_AI_CHOICE: Final = "gen_ai.choice"
EVENT_GEN_AI_CONTENT_PROMPT: Final = "gen_ai.content.prompt"
EVENT_GEN_AI_CONTENT_COMPLETION: Final = "gen_ai.content.completion"

# --- OpenInference ----------------------------------------------------------------
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_SYSTEM: Final = "llm.system"
OI_LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OI_LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OI_LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
OI_LLM_COST_TOTAL: Final = "llm.cost.total"
OI_LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
OI_INPUT_VALUE: Final = "input.value"
OI_OUTPUT_VALUE: Final = "output.value"
OI_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages."
OI_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages."
OI_PROMPT_TEMPLATE_VERSION: Final = "llm.prompt_template.version"
OI_USER_ID: Final = "user.id"
OI_SESSION_ID: Final = "session.id"
OI_TAG_TAGS: Final = "tag.tags"
OI_FIRST_TOKEN_EVENT: Final = "First Token Stream Event"

# --- Generic OpenTelemetry ---------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment"
ENDUSER_ID: Final = "enduser.id"

# --- watchkeep's own --------------------------------------------------------------
WK_USER_ID: Final = "watchkeep.user.id"
WK_SESSION_ID: Final = "watchkeep.session.id"
WK_ENVIRONMENT: Final = "watchkeep.environment"
WK_RELEASE: Final = "watchkeep.release"
WK_TAGS: Final = "watchkeep.tags"
WK_METADATA_PREFIX: Final = "watchkeep.metadata."
WK_PROMPT_NAME: Final = "watchkeep.prompt.name"
WK_PROMPT_VERSION: Final = "watchkeep.prompt.version"
WK_MODEL_VERSION: Final = "watchkeep.model.version"
WK_COST_USD: Final = "watchkeep.cost_usd"
WK_TIME_TO_FIRST_TOKEN_MS: Final = "watchkeep.time_to_first_token_ms"
WK_SPAN_KIND: Final = "watchkeep.span.kind"
WK_INPUT: Final = "watchkeep.input"
WK_OUTPUT: Final = "watchkeep.output"
WK_ROUTE: Final = "watchkeep.route"
WK_DEPLOYMENT: Final = "watchkeep.deployment"
WK_FIRST_TOKEN_EVENT: Final = "watchkeep.first_token"

# Other tools' trace-level names we honour too.
LANGFUSE_USER_ID: Final = "langfuse.user.id"
LANGFUSE_SESSION_ID: Final = "langfuse.session.id"
LANGFUSE_RELEASE: Final = "langfuse.release"
LANGFUSE_ENVIRONMENT: Final = "langfuse.environment"
LANGFUSE_TAGS: Final = "langfuse.trace.tags"

# --- Lookup tables used by ingest (first present name wins) ------------------------
USER_ID_KEYS: Final = (WK_USER_ID, OI_USER_ID, ENDUSER_ID, LANGFUSE_USER_ID)
SESSION_ID_KEYS: Final = (WK_SESSION_ID, OI_SESSION_ID, LANGFUSE_SESSION_ID, GEN_AI_CONVERSATION_ID)
ENVIRONMENT_KEYS: Final = (
    WK_ENVIRONMENT,
    LANGFUSE_ENVIRONMENT,
    DEPLOYMENT_ENVIRONMENT_NAME,
    DEPLOYMENT_ENVIRONMENT,
)
RELEASE_KEYS: Final = (WK_RELEASE, LANGFUSE_RELEASE)
TAGS_KEYS: Final = (WK_TAGS, OI_TAG_TAGS, LANGFUSE_TAGS)
PROVIDER_KEYS: Final = (GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, OI_LLM_PROVIDER, OI_LLM_SYSTEM)
INPUT_TOKEN_KEYS: Final = (
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_PROMPT_TOKENS,
    OI_LLM_TOKEN_COUNT_PROMPT,
)
OUTPUT_TOKEN_KEYS: Final = (
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_COMPLETION_TOKENS,
    OI_LLM_TOKEN_COUNT_COMPLETION,
)
TOTAL_TOKEN_KEYS: Final = (OI_LLM_TOKEN_COUNT_TOTAL, LLM_USAGE_TOTAL_TOKENS)
COST_KEYS: Final = (WK_COST_USD, OI_LLM_COST_TOTAL, "gen_ai.usage.cost")
PROMPT_VERSION_KEYS: Final = (WK_PROMPT_VERSION, OI_PROMPT_TEMPLATE_VERSION)

# OpenInference span kinds onto GenAI operation names.
OPENINFERENCE_KIND_TO_OPERATION: Final = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "CHAIN": "chain",
    "RETRIEVER": "retrieve",
    "RERANKER": "rerank",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluate",
}

# --- Gateway (watchkeep's own, on the span of each gateway call) -------------------
ERROR_TYPE: Final = "error.type"
WK_GATEWAY_STREAM: Final = "watchkeep.gateway.stream"
WK_GATEWAY_CACHE_HIT: Final = "watchkeep.gateway.cache_hit"
WK_GATEWAY_RETRIES: Final = "watchkeep.gateway.retries"
WK_GATEWAY_FALLBACKS: Final = "watchkeep.gateway.fallbacks"
WK_GATEWAY_ATTEMPTS: Final = "watchkeep.gateway.attempts"
WK_GATEWAY_DECISION: Final = "watchkeep.gateway.route_decision"
WK_GATEWAY_STATUS: Final = "watchkeep.gateway.status_code"
WK_GATEWAY_SHADOW_OF: Final = "watchkeep.gateway.shadow_of"

# --- Evaluation runs: the span of each case a run computed ----------------------------
WK_EVAL_RUN_ID: Final = "watchkeep.eval.run_id"
WK_EVAL_ITEM_KEY: Final = "watchkeep.eval.item_key"
WK_EVAL_REPEAT: Final = "watchkeep.eval.repeat"
WK_EVAL_VARIANT: Final = "watchkeep.eval.variant"
WK_EVAL_FAMILY: Final = "watchkeep.eval.family"
WK_EVAL_DATASET_VERSION: Final = "watchkeep.eval.dataset_version"


# --- Scores (the SDK's checks and the REST API's schema share these) ----------------
class ScoreSource(StrEnum):
    """Who produced a score."""

    HUMAN = "human"
    API = "api"
    EVALUATOR = "evaluator"
    END_USER = "end-user"


class ScoreDataType(StrEnum):
    """How a score's value is to be read."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
