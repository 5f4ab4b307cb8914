"""Request and response bodies of the HTTP API (shared/API.md): validation and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from citeqa.answer.compose import Citation
from citeqa.index.loading import DOC_ID_MAX, DOC_ID_PATTERN, TITLE_MAX
from citeqa.index.records import Passage

MAX_QUESTION = 2000
MAX_HISTORY = 20
MAX_TOP_K = 50

DocId = Annotated[str, StringConstraints(pattern=DOC_ID_PATTERN.pattern, max_length=DOC_ID_MAX)]
Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION)]


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=20_000)]


class AskRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "question": "Why does Moscow want Pokrovsk?", "top_k": 5, "doc_ids": None, "history": []}})

    question: Question
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None
    doc_ids: Annotated[list[DocId], Field(max_length=1000)] | None = None
    history: Annotated[list[Turn], Field(max_length=MAX_HISTORY)] = []


class AskResponse(BaseModel):
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    timings_ms: dict[str, float]
    query: str = Field(description="What was retrieved with: the question, plus context from the history.")
    support: float = Field(description="Best sentence score, compared with the abstention threshold.")


class Auth(BaseModel):
    writes: bool = Field(description="Adding and deleting documents needs the API key.")
    reads: bool = Field(description="Every other /v1 route needs it too.")


class Limits(BaseModel):
    question_chars: int
    top_k: int
    history_turns: int
    body_mb: float


class Info(BaseModel):
    version: str
    auth: Auth
    limits: Limits
    upload_types: list[str]


class SearchResponse(BaseModel):
    query: str
    results: list[Passage]


class DocumentIn(BaseModel):
    text: Annotated[str, StringConstraints(min_length=1)]
    title: Annotated[str, StringConstraints(max_length=TITLE_MAX)] | None = None  # one line: check_title
    doc_id: DocId | None = None


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    chars: int
    chunks: int
    added_at: float


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class Block(BaseModel):
    start: int
    end: int
    kind: str = Field(description="paragraph, heading, list_item, code, table_row, quote, signature, "
                                  "definition, note, or text (a plain file's prose)")
    level: int = Field(description="A heading's depth (1: outermost); 0 for other blocks.")


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    text: str
    chunks: int
    added_at: float
    pages: list[int] | None = Field(description="Where each page of a PDF begins in `text`: `pages[i]` is "
                                    "the offset of page i + 1 (a page without text begins where the next "
                                    "one does). null for unpaged documents.")
    blocks: list[Block] = Field(default_factory=list, description="The document's blocks in reading order "
                                "(headings, paragraphs, list items, code, table rows), for drawing `text` "
                                "by its structure; text between blocks belongs to none.")


class DocumentCreated(BaseModel):
    doc_id: str
    title: str
    chunks: int


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# The failures every API route can answer with, for the OpenAPI document.
ERROR_RESPONSES = {
    400: {"model": ErrorBody, "description": "A Host this service does not answer to (CITEQA_ALLOWED_HOSTS), "
          "or a request line and headers over 64 KB."},
    **{code: {"model": ErrorBody} for code in (401, 413, 422, 503)},
}
# Every method but GET, HEAD and OPTIONS: refused when a browser says another site's page sent it.
WRITE_RESPONSES = {**ERROR_RESPONSES, 403: {"model": ErrorBody, "description": "Sent by a page on another "
                                             "origin than this service's own or CITEQA_CORS_ORIGINS."}}


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text; of a list of parts (the newer OpenAI shape), the text parts joined."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="End the stream with a chunk that holds `usage`.")


class Usage(BaseModel):
    """Tokens counted with the embedding model's tokenizer: citeqa runs no generative model."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request; fields citeqa has no use for (temperature...) are ignored."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "model": "citeqa", "stream": False,
        "messages": [{"role": "user", "content": "Why does Moscow want Pokrovsk?"}]}})

    model: str = "citeqa"
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1000)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None
    doc_ids: Annotated[list[DocId], Field(max_length=1000)] | None = None


class ChatReplyMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatReplyMessage
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[Citation] = Field(description="The citations of the answer, as in /v1/ask.")
    abstained: bool


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
