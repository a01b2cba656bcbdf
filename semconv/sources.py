"""The attribute and event names other GenAI instrumentations write, which ``genai_normalize`` reads.

OpenInference (LlamaIndex, LangChain, CrewAI, DSPy, its OpenAI instrumentation), OpenLLMetry (Traceloop), the official
instrumentations before the conventions moved content onto the span, and the Vercel AI SDK. Each name is declared
once here and imported where it is read; what each maps to is docs/instrumentation.md ("Spans from other
instrumentations").
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai

# -- OpenInference (openinference-semantic-conventions)
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_MODEL_NAME: Final = "llm.model_name"
OI_PROVIDER: Final = "llm.provider"
OI_SYSTEM: Final = "llm.system"
OI_PROMPT_TOKENS: Final = "llm.token_count.prompt"
OI_COMPLETION_TOKENS: Final = "llm.token_count.completion"
OI_INPUT_MESSAGES: Final = "llm.input_messages"
OI_OUTPUT_MESSAGES: Final = "llm.output_messages"
OI_TOOLS: Final = "llm.tools"
OI_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
OI_TOOL_NAME: Final = "tool.name"
OI_TOOL_DESCRIPTION: Final = "tool.description"
OI_TOOL_CALL_ID: Final = "tool_call.id"
OI_INPUT_VALUE: Final = "input.value"
OI_OUTPUT_VALUE: Final = "output.value"
OI_SESSION_ID: Final = "session.id"
OI_AGENT_NAME: Final = "agent.name"
OI_KINDS: Final = {
    "LLM": "chat",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "EMBEDDING": "embeddings",
}
"""``openinference.span.kind`` values and the ``gen_ai.operation.name`` each is (CHAIN, RETRIEVER, RERANKER,
GUARDRAIL and EVALUATOR have no GenAI operation)."""

# -- OpenLLMetry (opentelemetry-semantic-conventions-ai)
TL_REQUEST_TYPE: Final = "llm.request.type"
TL_PROMPT: Final = "gen_ai.prompt"
TL_COMPLETION: Final = "gen_ai.completion"
TL_FUNCTIONS: Final = "llm.request.functions"
TL_SPAN_KIND: Final = "traceloop.span.kind"
TL_ENTITY_NAME: Final = "traceloop.entity.name"
TL_ENTITY_INPUT: Final = "traceloop.entity.input"
TL_ENTITY_OUTPUT: Final = "traceloop.entity.output"
TL_SESSION_ID: Final = "traceloop.association.properties.session_id"
TL_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
TL_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
TL_REQUEST_TYPES: Final = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
TL_KINDS: Final = {"tool": "execute_tool", "agent": "invoke_agent"}

# -- the official instrumentations before content moved onto the span (semantic conventions 1.26 - 1.36)
GEN_AI_SYSTEM: Final = _gen_ai.GEN_AI_SYSTEM
OLD_MESSAGE_EVENTS: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
OLD_CHOICE_EVENT: Final = "gen_ai.choice"
OLD_PROMPT_EVENT: Final = "gen_ai.content.prompt"
OLD_COMPLETION_EVENT: Final = "gen_ai.content.completion"

# -- Vercel AI SDK (experimental_telemetry)
AI_OPERATION_ID: Final = "ai.operationId"
AI_MODEL_ID: Final = "ai.model.id"
AI_MODEL_PROVIDER: Final = "ai.model.provider"
AI_PROMPT_MESSAGES: Final = "ai.prompt.messages"
AI_PROMPT: Final = "ai.prompt"
AI_RESPONSE_TEXT: Final = "ai.response.text"
AI_RESPONSE_TOOL_CALLS: Final = "ai.response.toolCalls"
AI_RESPONSE_FINISH_REASON: Final = "ai.response.finishReason"
AI_RESPONSE_MODEL: Final = "ai.response.model"
AI_USAGE_INPUT: Final = ("ai.usage.inputTokens", "ai.usage.promptTokens")
AI_USAGE_OUTPUT: Final = ("ai.usage.outputTokens", "ai.usage.completionTokens")
AI_TOOL_CALL_NAME: Final = "ai.toolCall.name"
AI_TOOL_CALL_ID: Final = "ai.toolCall.id"
AI_TOOL_CALL_ARGS: Final = ("ai.toolCall.args", "ai.toolCall.input")
AI_TOOL_CALL_RESULT: Final = ("ai.toolCall.result", "ai.toolCall.output")
AI_SESSION_ID: Final = ("ai.telemetry.metadata.sessionId", "ai.telemetry.metadata.conversationId")
AI_OPERATIONS: Final = {
    "ai.generateText.doGenerate": "chat",
    "ai.streamText.doStream": "chat",
    "ai.generateObject.doGenerate": "chat",
    "ai.streamObject.doStream": "chat",
    "ai.toolCall": "execute_tool",
    "ai.embed.doEmbed": "embeddings",
    "ai.embedMany.doEmbed": "embeddings",
}
